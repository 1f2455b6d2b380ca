// Package authz is numbergate's authorization server: an OpenID Connect
// provider (github.com/luikyv/go-oidc) wrapped by the CAMARA Identity and
// Consent Management profile for the Number Verification frontend flow.
//
// The engine does the protocol work: discovery, JWKS, the authorization
// code flow (RFC 6749 §4.1), PKCE S256 (RFC 7636), signed request objects
// (RFC 9101), private_key_jwt client authentication (RFC 7523, OIDC Core
// §9) and ID tokens. This package adds what CAMARA asks on top, and keeps
// the engine behind numbergate's own interfaces (nv.Store, nv.Resolver):
//
//   - network-based authentication: the authentication policy asks an
//     nv.Resolver which subscriber is behind the connection; no user
//     interaction (prompt=none implied); unknown device -> access_denied;
//   - exactly one dpv: purpose per request, scopes and purposes limited to
//     what the client was onboarded for (invalid_scope otherwise);
//   - every authorization request checked before the engine runs it
//     (jar.go): parameters parse, none repeated, each bounded
//     (MaxStateLen, MaxParamLen); redirect_uri an exact registered string;
//     response_mode query only; scopes offered and onboarded; openid
//     optional (plain OAuth 2.0 without it); code_challenge syntax;
//   - request objects (RFC 9101, by value): iss, aud, iat, exp, jti
//     present; iat not in the future and exp at most 300 s ahead (clock
//     skew aside), exp-iat <= 300 s; aud the authorization endpoint or the
//     issuer; the object is authoritative, and response_type, client_id,
//     scope and redirect_uri sent in plain form must equal its own;
//   - client assertions (token.go): the same time bounds, iss = sub =
//     client_id, aud exactly the token endpoint URL or the issuer, all
//     checked before the engine consumes the jti; jtis single use per
//     client (issuer) until exp plus the skew, through the store (shared
//     by every node);
//   - every refusal names the failed check and is logged once (client id,
//     endpoint, reason; never an assertion, code or token);
//   - the engine adapter (store.go) maps each engine call to one named
//     store operation; only the grant (with the code's SHA-256) is stored
//     at /authorize, nothing for a refused request;
//   - opaque access tokens stored only as their SHA-256 hash, at most 300 s,
//     single use, no refresh token, recording the number, client, scopes,
//     purpose and how the device was authenticated;
//   - a pairwise ID token sub derived with a secret kept in the store, never
//     the number;
//   - a reused authorization code is invalid_grant and revokes the tokens
//     its first redemption issued (RFC 6749 §4.1.2).
package authz
