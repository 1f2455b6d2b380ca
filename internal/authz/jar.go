package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/numbergate/numbergate/internal/nv"
)

// requestObjectAlgs are the algorithms accepted on signed request objects
// and client assertions: asymmetric only (CAMARA ICM).
var requestObjectAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.PS256, jose.EdDSA}

// Limits on authorization request parameters (docs/SECURITY.md). Beyond
// them the request is invalid_request. They bound what a grant can carry.
const (
	// MaxStateLen bounds state and nonce, the free text a client passes
	// through.
	MaxStateLen = 512
	// MaxParamLen bounds every other parameter but request.
	MaxParamLen = 2048
	// MaxRequestObjectLen bounds a request object (RFC 9101).
	MaxRequestObjectLen = 8 << 10
)

func paramLimit(name string) int {
	switch name {
	case "state", "nonce":
		return MaxStateLen
	case "request":
		return MaxRequestObjectLen
	default:
		return MaxParamLen
	}
}

// pkceChallenge is the RFC 7636 §4.2 code_challenge syntax (S256 gives 43).
var pkceChallenge = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// oidcOnlyScopes are standard OpenID Connect claims requested by scope:
// without openid they are invalid_request (CAMARA ICM).
var oidcOnlyScopes = []string{"profile", "email", "address", "phone", "offline_access"}

// repeatedParams are the parameters CAMARA asks clients to repeat in plain
// form beside a request object: when present they must equal the object's.
// Other plain parameters are overridden by the object's.
var repeatedParams = []string{"response_type", "client_id", "scope", "redirect_uri"}

// authzRefusal is an authorization request refused by numbergate before
// the engine sees it.
type authzRefusal struct {
	code, desc string
}

// serveAuthorize checks an authorization request with CAMARA's rules and
// numbergate's limits before the engine runs it:
//
//   - the query (and form body) must parse; no parameter may repeat
//     (RFC 6749 §3.1); each is bounded (MaxStateLen, MaxParamLen);
//   - client_id must be onboarded and redirect_uri registered for it, as
//     an exact string; until both hold, errors are a page, never a
//     redirect (RFC 6749 §4.1.2.1);
//   - a signed request object (RFC 9101) is verified with the client's
//     keys: iss, aud, iat, exp, jti present; iat not in the future and exp
//     at most 300 s ahead (clock skew aside); exp - iat at most 300 s; aud
//     the issuer or the authorization endpoint URL; the jti single use per
//     client until exp plus the skew. Its parameters are authoritative;
//     response_type, client_id, scope and redirect_uri, when also sent in
//     plain form, must equal them (RFC 9101 clients send only client_id);
//   - response_mode, when sent, must be query (the only mode served);
//   - every scope must be offered and onboarded for the client, with
//     exactly one dpv: purpose (invalid_scope names the scope);
//   - without openid, no standard OIDC claim may be requested;
//   - code_challenge must have RFC 7636 syntax and its method be S256.
//
// Then the engine runs the request with these parameters as its form
// (engineAuthorizeRequest).
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		s.refusePage(w, r, "", http.StatusBadRequest, "invalid_request",
			"the authorization request is malformed: its query string or form body cannot be parsed (check the percent-encoding; ';' is not a separator)")
		return
	}
	form := r.Form
	if len(form["client_id"]) != 1 || form.Get("client_id") == "" || len(form.Get("client_id")) > MaxParamLen {
		s.refusePage(w, r, "", http.StatusBadRequest, "invalid_request", "client_id is required, once")
		return
	}
	clientID := form.Get("client_id")
	client, err := s.cfg.Store.Client(ctx, clientID)
	switch {
	case errors.Is(err, nv.ErrNotFound):
		s.refusePage(w, r, clientID, http.StatusBadRequest, "invalid_client", "client_id is not an onboarded client")
		return
	case clientGone(ctx, err):
		s.refusePage(w, r, clientID, statusClientClosedRequest, "client_closed_request", "the client went away before the answer")
		return
	case err != nil:
		s.log.ErrorContext(ctx, "authorize: client lookup failed", "client_id", clientID, "err", err)
		s.refusePage(w, r, clientID, http.StatusInternalServerError, "server_error", "the client could not be loaded")
		return
	}

	ro := form.Get("request")
	redirectURI := form.Get("redirect_uri")
	if redirectURI == "" && ro != "" && len(ro) <= MaxRequestObjectLen {
		// RFC 9101: the object alone may carry redirect_uri. It is only
		// used (before the signature is checked) if registered for the
		// client, so an error can go there safely.
		redirectURI = unverifiedClaim(ro, "redirect_uri")
	}
	switch {
	case len(form["redirect_uri"]) > 1:
		s.refusePage(w, r, clientID, http.StatusBadRequest, "invalid_request", "redirect_uri must be sent once")
		return
	case redirectURI == "":
		s.refusePage(w, r, clientID, http.StatusBadRequest, "invalid_request", "redirect_uri is required")
		return
	case !slices.Contains(client.RedirectURIs, redirectURI):
		s.refusePage(w, r, clientID, http.StatusBadRequest, "invalid_request",
			"redirect_uri is not registered for this client (it is compared as an exact string)")
		return
	}

	// From here on, errors go back to the client's redirect_uri.
	state := ""
	if v := form["state"]; len(v) == 1 && len(v[0]) <= MaxStateLen {
		state = v[0]
	}
	refuse := func(ref authzRefusal) {
		s.logRefusal(r, clientID, ref.code, ref.desc)
		if s.cfg.OnAuthorize != nil {
			s.cfg.OnAuthorize(ref.code, "")
		}
		redirectWithError(w, redirectURI, s.cfg.Issuer, state, ref.code, ref.desc)
	}
	if ref := checkParams(form); ref != nil {
		refuse(*ref)
		return
	}

	params := map[string]string{}
	for k, v := range form {
		if k != "request" {
			params[k] = v[0]
		}
	}
	if ro != "" {
		if form.Get("request_uri") != "" {
			refuse(authzRefusal{"invalid_request", "request and request_uri must not both be sent"})
			return
		}
		claims, objParams, err := s.verifyRequestObject(ro, client)
		if v, ok := objParams["state"]; ok && len(v) <= MaxStateLen {
			state = v
		}
		if err != nil {
			refuse(authzRefusal{"invalid_request_object", err.Error()})
			return
		}
		for k, v := range objParams {
			if plain, ok := params[k]; ok && plain != v && slices.Contains(repeatedParams, k) {
				refuse(authzRefusal{"invalid_request_object", fmt.Sprintf("%s differs between the request object and the plain parameter", k)})
				return
			}
			if len(v) > paramLimit(k) {
				refuse(authzRefusal{"invalid_request", fmt.Sprintf("%s in the request object exceeds %d bytes", k, paramLimit(k))})
				return
			}
			params[k] = v
		}
		for _, k := range []string{"client_id", "response_type", "redirect_uri"} {
			if _, ok := objParams[k]; !ok {
				refuse(authzRefusal{"invalid_request_object", k + " must be in the request object"})
				return
			}
		}
		// Consumed last: a request refused above does not burn its jti.
		if err := s.consumeJTI(ctx, client.ID, claims.ID, claims.Expiry.Time()); err != nil {
			refuse(authzRefusal{"invalid_request_object", "the request object jti was already used"})
			return
		}
	}
	if ref := checkAuthorizeParams(params, client); ref != nil {
		refuse(*ref)
		return
	}

	slot := &engineErrSlot{}
	r2 := engineAuthorizeRequest(context.WithValue(ctx, engineErrKey{}, slot), r, params)
	s.runAuthorize(w, r2, slot, clientID)
}

// engineAuthorizeRequest is the checked request as the engine runs it,
// with context ctx: a form POST whose form is already parsed (params), so
// that the engine reads its parameters from that map. (As a GET, go-oidc
// v0.23.0 parses the query string again for each of its 27 parameters.)
// The body is empty and Content-Type absent, which the engine accepts for
// a form.
func engineAuthorizeRequest(ctx context.Context, r *http.Request, params map[string]string) *http.Request {
	form := make(url.Values, len(params))
	for k, v := range params {
		form[k] = []string{v}
	}
	r2 := r.WithContext(ctx) // a shallow copy
	u := *r.URL
	u.RawQuery, u.ForceQuery = "", false
	r2.URL = &u
	r2.Method = http.MethodPost
	r2.Body, r2.GetBody = http.NoBody, nil
	r2.ContentLength = 0
	r2.Form, r2.PostForm, r2.MultipartForm = form, form, nil
	if _, ok := r.Header["Content-Type"]; ok {
		r2.Header = r.Header.Clone()
		r2.Header.Del("Content-Type")
	}
	return r2
}

// runAuthorize hands a checked authorization request to the engine. An
// error the engine redirects gets the description of what failed (the
// engine's own is generic) and one log line.
func (s *Server) runAuthorize(w http.ResponseWriter, r *http.Request, slot *engineErrSlot, clientID string) {
	rec := newBufferWriter()
	defer rec.release()
	s.engine.ServeHTTP(rec, r)
	if slot.err != nil {
		var oe goidc.Error
		if errors.As(slot.err, &oe) && oe.Code != goidc.ErrorCodeInternalError {
			desc := describeEngineError(oe)
			if u, err := url.Parse(rec.header.Get("Location")); err == nil && u.Query().Get("error") != "" {
				q := u.Query()
				q.Set("error_description", desc)
				u.RawQuery = q.Encode()
				rec.header.Set("Location", u.String())
			}
			s.logRefusal(r, clientID, string(oe.Code), desc)
		}
	}
	rec.copyTo(w)
}

// checkParams applies RFC 6749 §3.1 (no repeated parameter) and the
// length limits to the parameters as sent.
func checkParams(form url.Values) *authzRefusal {
	found := false
	k := ""
	for name, v := range form {
		if (len(v) > 1 || len(v) == 1 && len(v[0]) > paramLimit(name)) && (!found || name < k) {
			k, found = name, true
		}
	}
	switch {
	case !found:
		return nil
	case len(form[k]) > 1:
		return &authzRefusal{"invalid_request", fmt.Sprintf("%s is sent more than once (RFC 6749 §3.1)", k)}
	default:
		return &authzRefusal{"invalid_request", fmt.Sprintf("%s exceeds %d bytes", k, paramLimit(k))}
	}
}

// checkAuthorizeParams checks the effective parameters (plain merged with
// the request object's).
func checkAuthorizeParams(p map[string]string, c nv.Client) *authzRefusal {
	if p["request_uri"] != "" {
		return &authzRefusal{"request_uri_not_supported", "request_uri is not supported; send the request object by value in request"}
	}
	if m := p["response_mode"]; m != "" && m != "query" {
		return &authzRefusal{"invalid_request", fmt.Sprintf("response_mode %q is not supported: the only response mode is query", m)}
	}
	if p["response_type"] == "" {
		return &authzRefusal{"invalid_request", "response_type is required (code)"}
	}
	if rt := p["response_type"]; rt != "code" {
		return &authzRefusal{"unsupported_response_type", fmt.Sprintf("response_type must be code, not %q", rt)}
	}
	scopes := nv.SplitScope(p["scope"])
	if !slices.Contains(scopes, nv.ScopeOpenID) {
		for _, sc := range scopes {
			if slices.Contains(oidcOnlyScopes, sc) {
				return &authzRefusal{"invalid_request", fmt.Sprintf("scope %q is an OpenID Connect claim: it requires the openid scope", sc)}
			}
		}
		if p["claims"] != "" {
			return &authzRefusal{"invalid_request", "the claims parameter requires the openid scope"}
		}
	}
	if _, err := checkScopes(p["scope"], c); err != nil {
		return &authzRefusal{"invalid_scope", err.Error()}
	}
	if ch := p["code_challenge"]; ch != "" {
		if !pkceChallenge.MatchString(ch) {
			return &authzRefusal{"invalid_request", "code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 §4.2): the base64url SHA-256 of the code_verifier"}
		}
		if m := p["code_challenge_method"]; m != "S256" {
			return &authzRefusal{"invalid_request", fmt.Sprintf("code_challenge_method must be S256, not %q", m)}
		}
	} else if p["code_challenge_method"] != "" {
		return &authzRefusal{"invalid_request", "code_challenge_method is sent without code_challenge"}
	}
	if c.RequirePKCE && p["code_challenge"] == "" {
		return &authzRefusal{"invalid_request", "this client must use PKCE: code_challenge with code_challenge_method=S256 is required"}
	}
	return nil
}

// unverifiedClaim reads a string claim of a JWS without checking it.
func unverifiedClaim(token, name string) string {
	tok, err := jwt.ParseSigned(token, requestObjectAlgs)
	if err != nil {
		return ""
	}
	var raw map[string]any
	if err := tok.UnsafeClaimsWithoutVerification(&raw); err != nil {
		return ""
	}
	v, _ := raw[name].(string)
	return v
}

// verifyRequestObject checks the object and returns its claims and its
// authorization parameters (string claims other than the JWT's own). The
// parameters are returned even on error when readable, so that the error
// can carry the object's state.
func (s *Server) verifyRequestObject(ro string, c nv.Client) (jwt.Claims, map[string]string, error) {
	var claims jwt.Claims
	tok, err := jwt.ParseSigned(ro, requestObjectAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return claims, nil, errors.New("the request object must be a JWS signed with ES256, RS256, PS256 or EdDSA")
	}
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal(c.JWKS, &jwks); err != nil {
		return claims, nil, errors.New("the client's registered keys are unreadable")
	}
	h := tok.Headers[0]
	var key *jose.JSONWebKey
	for i, k := range jwks.Keys {
		if (h.KeyID != "" && k.KeyID == h.KeyID) || (h.KeyID == "" && k.Algorithm == h.Algorithm) {
			key = &jwks.Keys[i]
			break
		}
	}
	if key == nil {
		return claims, nil, errors.New("no registered key of the client matches the request object's kid/alg")
	}
	var raw map[string]any
	if err := tok.Claims(key.Key, &claims, &raw); err != nil {
		return claims, nil, errors.New("the request object signature does not verify with the client's registered key")
	}
	params := map[string]string{}
	for k, v := range raw {
		switch k {
		case "iss", "aud", "iat", "exp", "nbf", "jti", "sub":
			continue
		case "request", "request_uri":
			return claims, nil, fmt.Errorf("a request object must not contain %s (RFC 9101 §4)", k)
		}
		sv, ok := v.(string)
		if !ok {
			return claims, nil, fmt.Errorf("request object parameter %q must be a string", k)
		}
		params[k] = sv
	}
	aud := []string{s.cfg.Issuer, s.cfg.Issuer + AuthorizePath}
	switch {
	case claims.Issuer != c.ID:
		return claims, params, errors.New("the request object iss must be the client_id")
	case len(claims.Audience) == 0:
		return claims, params, errors.New("the request object must carry aud")
	case !slices.ContainsFunc(aud, claims.Audience.Contains):
		return claims, params, fmt.Errorf("the request object aud must be %s or %s", aud[0], aud[1])
	case claims.ID == "":
		return claims, params, errors.New("the request object must carry jti")
	}
	if msg := s.checkJWTTimes("request object", claims, true); msg != "" {
		return claims, params, errors.New(msg)
	}
	return claims, params, nil
}

// checkJWTTimes applies CAMARA's time bounds to a request object or a
// client assertion: exp present; iat present when required; iat and nbf
// not later than now plus the skew; exp at most 300 s (plus the skew)
// ahead, exp - iat at most 300 s, and exp plus the skew not passed.
// Returns "" when they hold.
func (s *Server) checkJWTTimes(what string, c jwt.Claims, iatRequired bool) string {
	now, skew := s.now(), s.cfg.ClockSkew
	switch {
	case c.Expiry == nil:
		return "the " + what + " must carry exp"
	case c.IssuedAt == nil && iatRequired:
		return "the " + what + " must carry iat"
	case c.IssuedAt != nil && c.IssuedAt.Time().After(now.Add(skew)):
		return fmt.Sprintf("the %s iat is in the future (allowed clock skew: %s)", what, skew)
	case c.NotBefore != nil && c.NotBefore.Time().After(now.Add(skew)):
		return fmt.Sprintf("the %s is not valid yet (nbf; allowed clock skew: %s)", what, skew)
	case c.Expiry.Time().After(now.Add(maxJWTLifetime + skew)):
		return fmt.Sprintf("the %s exp must be at most 300 seconds ahead (allowed clock skew: %s)", what, skew)
	case c.IssuedAt != nil && c.Expiry.Time().Sub(c.IssuedAt.Time()) > maxJWTLifetime:
		return "the " + what + " lifetime (exp - iat) must not exceed 300 seconds"
	case !c.Expiry.Time().Add(skew).After(now):
		return fmt.Sprintf("the %s has expired (exp; allowed clock skew: %s)", what, skew)
	}
	return ""
}

// redirectWithError sends an authorization error back to the client
// (RFC 6749 §4.1.2.1, with iss per RFC 9207).
func redirectWithError(w http.ResponseWriter, redirectURI, issuer, state, code, desc string) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	q := u.Query()
	q.Set("error", code)
	q.Set("error_description", desc)
	q.Set("iss", issuer)
	if state != "" {
		q.Set("state", state)
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusSeeOther)
}

// refusePage shows an authorization error that must not be redirected.
func (s *Server) refusePage(w http.ResponseWriter, r *http.Request, clientID string, status int, code, desc string) {
	s.logRefusal(r, clientID, code, desc)
	if s.cfg.OnAuthorize != nil {
		s.cfg.OnAuthorize(code, "")
	}
	_ = s.renderPage(w, status, code, desc)
}

// logRefusal writes the one log line of a refused request: client id,
// endpoint, error and reason; never an assertion, code or token.
func (s *Server) logRefusal(r *http.Request, clientID, code, reason string) {
	s.log.InfoContext(r.Context(), "oauth request refused",
		"endpoint", r.URL.Path, "client_id", truncate(clientID, 128), "error", code, "reason", reason)
}

func truncate(v string, n int) string {
	if len(v) <= n {
		return v
	}
	return v[:n] + "..."
}
