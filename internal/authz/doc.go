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
//   - request objects: iss, aud, iat, exp, jti present, exp-iat <= 300 s,
//     aud the authorization endpoint or the issuer, and response_type,
//     client_id, scope and redirect_uri also sent in plain form and equal;
//   - client assertions: exp at most 300 s ahead and exp-iat at most 300 s,
//     checked before the engine consumes the jti; jti single use through
//     the store (shared by every node);
//   - opaque access tokens stored only as their SHA-256 hash, at most 300 s,
//     single use, no refresh token, recording the number, client, scopes,
//     purpose and how the device was authenticated;
//   - a pairwise ID token sub derived with a secret kept in the store, never
//     the number;
//   - a reused authorization code is invalid_grant and revokes the tokens
//     its first redemption issued (RFC 6749 §4.1.2).
package authz
