package authz

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/numbergate/numbergate/internal/nv"
)

// requestObjectAlgs are the algorithms accepted on signed request objects
// and client assertions: asymmetric only (CAMARA ICM).
var requestObjectAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.PS256, jose.EdDSA}

// serveAuthorize handles signed request objects (RFC 9101) with CAMARA's
// rules before the engine sees the request: the object's signature is
// verified with the client's registered keys; iss, aud, iat, exp and jti
// must be present, exp - iat at most 300 s, aud the issuer or the
// authorization endpoint URL, jti single use; response_type, client_id,
// scope and redirect_uri must also be sent in plain form with equal values.
// The verified object's parameters then replace the plain ones and the
// engine runs the ordinary authorization request.
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, errors.New("malformed authorization request"))
		return
	}
	ro := r.Form.Get("request")
	if ro == "" {
		s.engine.ServeHTTP(w, r)
		return
	}
	if r.Form.Get("request_uri") != "" {
		s.renderPage(w, http.StatusBadRequest, "invalid_request", "request and request_uri must not both be sent")
		return
	}
	clientID, redirectURI := r.Form.Get("client_id"), r.Form.Get("redirect_uri")
	client, err := s.cfg.Store.Client(r.Context(), clientID)
	if err != nil {
		s.renderPage(w, http.StatusBadRequest, "invalid_client", "unknown client_id (sent in plain form beside the request object)")
		return
	}
	if !slices.Contains(client.RedirectURIs, redirectURI) {
		s.renderPage(w, http.StatusBadRequest, "invalid_request", "redirect_uri must be sent in plain form and match one registered for the client")
		return
	}
	params, err := s.verifyRequestObject(r, ro, client)
	if err != nil {
		s.log.InfoContext(r.Context(), "authorize: request object rejected", "client_id", clientID, "reason", err.Error())
		if s.cfg.OnAuthorize != nil {
			s.cfg.OnAuthorize("invalid_request_object", "")
		}
		state := r.Form.Get("state")
		if v, ok := params["state"]; ok {
			state = v
		}
		redirectWithError(w, redirectURI, s.cfg.Issuer, state, "invalid_request_object", err.Error())
		return
	}
	q := url.Values{}
	for k, v := range r.Form {
		if k != "request" {
			q[k] = v
		}
	}
	for k, v := range params {
		q.Set(k, v)
	}
	r2 := r.Clone(r.Context())
	r2.Method = http.MethodGet
	r2.URL.RawQuery = q.Encode()
	r2.Body = http.NoBody
	r2.ContentLength = 0
	r2.Form, r2.PostForm = nil, nil
	r2.Header.Del("Content-Type")
	s.engine.ServeHTTP(w, r2)
}

// verifyRequestObject checks the object and returns its authorization
// parameters (string claims other than the JWT's own).
func (s *Server) verifyRequestObject(r *http.Request, ro string, c nv.Client) (map[string]string, error) {
	tok, err := jwt.ParseSigned(ro, requestObjectAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return nil, errors.New("the request object must be a JWS signed with ES256, RS256, PS256 or EdDSA")
	}
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal(c.JWKS, &jwks); err != nil {
		return nil, errors.New("the client's registered keys are unreadable")
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
		return nil, errors.New("no registered key of the client matches the request object's kid/alg")
	}
	var claims jwt.Claims
	var raw map[string]any
	if err := tok.Claims(key.Key, &claims, &raw); err != nil {
		return nil, errors.New("the request object signature does not verify with the client's registered key")
	}
	switch {
	case claims.Issuer != c.ID:
		return nil, errors.New("the request object iss must be the client_id")
	case len(claims.Audience) == 0:
		return nil, errors.New("the request object must carry aud")
	case !claims.Audience.Contains(s.cfg.Issuer) && !claims.Audience.Contains(s.cfg.Issuer+authorizePath):
		return nil, errors.New("the request object aud must be the issuer or the authorization endpoint URL")
	case claims.IssuedAt == nil:
		return nil, errors.New("the request object must carry iat")
	case claims.Expiry == nil:
		return nil, errors.New("the request object must carry exp")
	case claims.ID == "":
		return nil, errors.New("the request object must carry jti")
	case claims.Expiry.Time().Sub(claims.IssuedAt.Time()) > maxJWTLifetime:
		return nil, errors.New("the request object lifetime (exp - iat) must not exceed 300 seconds")
	case !claims.Expiry.Time().After(s.now()):
		return nil, errors.New("the request object has expired")
	case claims.NotBefore != nil && claims.NotBefore.Time().After(s.now().Add(30*time.Second)):
		return nil, errors.New("the request object is not valid yet (nbf)")
	}
	params := map[string]string{}
	for k, v := range raw {
		switch k {
		case "iss", "aud", "iat", "exp", "nbf", "jti", "sub":
			continue
		}
		sv, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("request object parameter %q must be a string", k)
		}
		params[k] = sv
	}
	for _, name := range []string{"response_type", "client_id", "scope", "redirect_uri"} {
		plain := r.Form.Get(name)
		if plain == "" {
			return params, fmt.Errorf("%s must also be sent as a plain parameter beside the request object", name)
		}
		if v, ok := params[name]; !ok || v != plain {
			return params, fmt.Errorf("%s in the request object must be present and equal to the plain parameter", name)
		}
	}
	if err := s.consumeJTI(r.Context(), c.ID, claims.ID, claims.Expiry.Time()); err != nil {
		return params, errors.New("the request object jti was already used")
	}
	return params, nil
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
