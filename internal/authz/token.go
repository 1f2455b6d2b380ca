package authz

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/numbergate/numbergate/internal/nv"
)

// assertionType is the only client_assertion_type (RFC 7523 §2.2).
const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// errJTIUsed is a replayed jti (client assertion or request object).
var errJTIUsed = errors.New("the jti was already used: a jti is single use per client until its exp")

// consumeJTI records the issuer's jti until the JWT's exp plus the clock
// skew, so that it cannot be replayed while any clock could still accept it.
func (s *Server) consumeJTI(ctx context.Context, issuer, jti string, exp time.Time) error {
	err := s.cfg.Store.ConsumeJTI(ctx, issuer, jti, exp.Add(s.cfg.ClockSkew), s.now())
	if errors.Is(err, nv.ErrConsumed) {
		return errJTIUsed
	}
	return err
}

// assertionKey carries the client assertion's claims, read by serveToken,
// to the engine's jti hook.
type assertionKey struct{}

type assertionInfo struct {
	issuer, jti string
	exp         time.Time
}

// consumeAssertionJTI is the engine's jti hook for client assertions. The
// engine calls it after verifying the assertion's signature with the key of
// the client named by its iss (which it checked equals client_id), so the
// issuer read by serveToken is the authenticated client. In /token the jti
// is left pending in the request's issueSlot, consumed with the token
// (IssueToken) or, if the request fails first, on its own (issue.go).
func (s *Server) consumeAssertionJTI(ctx context.Context, jti string) error {
	a, ok := ctx.Value(assertionKey{}).(assertionInfo)
	if !ok || a.jti != jti {
		return errors.New("the client assertion was not checked before its jti")
	}
	if sl := issueSlotOf(ctx); sl != nil {
		sl.jti = nv.JTI{Issuer: a.issuer, ID: jti, ExpiresAt: a.exp.Add(s.cfg.ClockSkew)}
		sl.jtiState = jtiPending
		return nil
	}
	return s.consumeJTI(ctx, a.issuer, jti, a.exp)
}

// engineErrKey carries a slot where the engine's error handler leaves the
// error of the request, so that the edge can say precisely what failed.
type engineErrKey struct{}

type engineErrSlot struct{ err error }

// tokenContext is a /token request's context: it carries the client
// assertion's claims (assertionKey), the engine's error slot (engineErrKey)
// and the issueSlot (issueKey) in one allocation, where three
// context.WithValue and request copies would make six.
type tokenContext struct {
	context.Context
	assertion assertionInfo
	errSlot   engineErrSlot
	issue     issueSlot
}

func (c *tokenContext) Value(key any) any {
	switch key.(type) {
	case assertionKey:
		return c.assertion
	case engineErrKey:
		return &c.errSlot
	case issueKey:
		return &c.issue
	}
	return c.Context.Value(key)
}

// handleEngineError is the engine's error handler: it records the error for
// the edge (serveToken, runEngine), which logs one line per refusal, and
// logs internal errors itself. Engine errors describe the protocol step
// that failed; they never hold a number, a code or a token.
func (s *Server) handleEngineError(ctx context.Context, err error) {
	if slot, ok := ctx.Value(engineErrKey{}).(*engineErrSlot); ok && slot.err == nil {
		slot.err = err
	}
	var oe goidc.Error
	if !errors.As(err, &oe) || oe.Code == goidc.ErrorCodeInternalError {
		s.logFault(ctx, "oauth request failed", err)
	}
}

// serveToken checks the request and the client assertion's claims
// (CAMARA's bounds, exact aud) before the engine sees them, so that a
// refused assertion consumes no jti; the engine then verifies the
// signature and redeems the code, and the token handler stores the jti
// (per client), the redemption, the token and its usage record in one
// store operation (issue.go). Every
// refusal names the failed check (issue 9) and is logged once.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		s.refuseToken(w, r, "", http.StatusBadRequest, "invalid_request",
			fmt.Sprintf("/token takes an application/x-www-form-urlencoded body (Content-Type was %q)", truncate(r.Header.Get("Content-Type"), 64)))
		return
	}
	if err := r.ParseForm(); err != nil {
		s.refuseToken(w, r, "", http.StatusBadRequest, "invalid_request",
			"the body must be application/x-www-form-urlencoded, at most 64 KiB, and parse (check the percent-encoding)")
		return
	}
	form := r.PostForm
	clientID := truncate(form.Get("client_id"), MaxParamLen)
	if k := firstKey(form, func(v []string) bool { return len(v) > 1 }); k != "" {
		s.refuseToken(w, r, clientID, http.StatusBadRequest, "invalid_request", k+" is sent more than once (RFC 6749 §3.2)")
		return
	}
	if form.Get("client_assertion_type") != assertionType || form.Get("client_assertion") == "" {
		s.refuseToken(w, r, clientID, http.StatusUnauthorized, "invalid_client",
			"client authentication is private_key_jwt: send client_assertion_type="+assertionType+" and client_assertion")
		return
	}
	info, msg := s.checkAssertion(form.Get("client_assertion"), form.Get("client_id"))
	if msg != "" {
		s.refuseToken(w, r, clientID, http.StatusUnauthorized, "invalid_client", msg)
		return
	}
	if clientID == "" {
		clientID = truncate(info.issuer, MaxParamLen)
	}
	tc := &tokenContext{Context: r.Context(), assertion: info}
	r = r.WithContext(tc)
	slot, issue := &tc.errSlot, &tc.issue
	rec := newBufferWriter()
	defer rec.release()
	s.engine.ServeHTTP(rec, r)
	// The request failed after the client authenticated but before its
	// token was issued: the assertion is consumed all the same, before the
	// answer (unless the store is unavailable: then nothing changes).
	if issue.jtiState == jtiPending && !unavailableNoted(r.Context()) {
		if err := issue.consumePending(r.Context(), s.cfg.Store, s.now()); err != nil && !errors.Is(err, errJTIUsed) {
			if clientGone(r.Context(), err) {
				s.clientGoneToken(w, r, clientID)
				return
			}
			if !errors.Is(err, nv.ErrUnavailable) {
				s.log.ErrorContext(r.Context(), "token: the client assertion's jti could not be consumed", "err", err)
			}
			s.refuseToken(w, r, clientID, http.StatusInternalServerError, "server_error", "the request could not be processed")
			return
		}
	}
	if issue.jtiState == jtiReplayed {
		s.refuseToken(w, r, clientID, http.StatusUnauthorized, "invalid_client", jtiUsedDescription)
		return
	}
	if rec.status < 400 || slot.err == nil {
		rec.copyTo(w)
		return
	}
	var oe goidc.Error
	if !errors.As(slot.err, &oe) || oe.Code == goidc.ErrorCodeInternalError {
		if clientGone(r.Context(), slot.err) {
			s.clientGoneToken(w, r, clientID)
			return
		}
		s.refuseToken(w, r, clientID, http.StatusInternalServerError, "server_error", "the request could not be processed")
		return
	}
	s.refuseToken(w, r, clientID, oe.StatusCode(), string(oe.Code), describeEngineError(oe))
}

// refuseToken answers a refused token request and logs it once.
func (s *Server) refuseToken(w http.ResponseWriter, r *http.Request, clientID string, status int, code, desc string) {
	s.logRefusal(r, clientID, code, desc)
	writeOAuthError(w, status, code, desc)
}

// checkAssertion checks a client assertion's claims before the engine
// consumes its jti: iss = sub = client_id (when sent), aud exactly the
// token endpoint URL or the issuer, jti present, and the time bounds of
// checkJWTTimes. The signature is the engine's to verify (with the key of
// the client named by iss). Returns the message of the failed check, or "".
func (s *Server) checkAssertion(assertion, clientID string) (assertionInfo, string) {
	var claims jwt.Claims
	if payload, ok := plainCompactJWS(assertion); ok {
		if err := josejson.Unmarshal(payload, &claims); err != nil {
			return assertionInfo{}, "the client assertion claims are unreadable"
		}
	} else {
		tok, err := jwt.ParseSigned(assertion, requestObjectAlgs)
		if err != nil {
			return assertionInfo{}, "the client assertion must be a JWT signed with ES256, RS256, PS256 or EdDSA"
		}
		if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil {
			return assertionInfo{}, "the client assertion claims are unreadable"
		}
	}
	aud := []string{s.cfg.Issuer + TokenPath, s.cfg.Issuer}
	switch {
	case claims.Issuer == "":
		return assertionInfo{}, "the client assertion must carry iss (the client_id)"
	case clientID != "" && claims.Issuer != clientID:
		return assertionInfo{}, "the client assertion iss must equal client_id"
	case claims.Subject != claims.Issuer:
		return assertionInfo{}, "the client assertion sub must equal its iss (the client_id)"
	case len(claims.Audience) == 0:
		return assertionInfo{}, fmt.Sprintf("the client assertion must carry aud: %s (or %s)", aud[0], aud[1])
	case !slices.ContainsFunc(aud, claims.Audience.Contains):
		return assertionInfo{}, fmt.Sprintf("the client assertion aud must be exactly %s (or the issuer %s)", aud[0], aud[1])
	case claims.ID == "":
		return assertionInfo{}, "the client assertion must carry jti"
	}
	if msg := s.checkJWTTimes("client assertion", claims, false); msg != "" {
		return assertionInfo{}, msg
	}
	return assertionInfo{issuer: claims.Issuer, jti: claims.ID, exp: claims.Expiry.Time()}, ""
}

// plainCompactJWS returns the decoded payload of a compact JWS whose
// protected header holds only string values of alg (one of
// requestObjectAlgs), kid and typ: the usual client assertion. For such a
// JWS, jwt.ParseSigned(s, requestObjectAlgs) succeeds and
// UnsafeClaimsWithoutVerification decodes this payload with the same JSON
// decoder, so checkAssertion reads the same claims without go-jose's full
// header processing (the engine parses the assertion twice more, to find
// the client and to verify it). Any other input gives false and goes
// through go-jose, so what is refused, and how, is unchanged.
func plainCompactJWS(s string) ([]byte, bool) {
	protected, rest, ok := strings.Cut(s, ".")
	if !ok {
		return nil, false
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(sig, '.') >= 0 {
		return nil, false
	}
	header, err := base64.RawURLEncoding.DecodeString(protected)
	if err != nil {
		return nil, false
	}
	var fields map[string]any
	if err := josejson.Unmarshal(header, &fields); err != nil {
		return nil, false
	}
	alg, _ := fields["alg"].(string)
	if !slices.Contains(requestObjectAlgs, jose.SignatureAlgorithm(alg)) {
		return nil, false
	}
	for k, v := range fields {
		if _, str := v.(string); !str || (k != "alg" && k != "kid" && k != "typ") {
			return nil, false
		}
	}
	if _, err := base64.RawURLEncoding.DecodeString(sig); err != nil {
		return nil, false
	}
	body, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, false
	}
	return body, true
}

// jtiUsedDescription answers a replayed client assertion.
const jtiUsedDescription = "the client assertion jti was already used (a jti is single use per client)"

// describeEngineError turns an engine refusal into an error_description
// that names the failed check. The engine's own descriptions are generic
// ("invalid grant"); the error it wraps says what failed, in protocol
// terms (go-oidc v0.23.0; TestTokenErrorsNameTheCheck pins them).
func describeEngineError(oe goidc.Error) string {
	inner := errors.Unwrap(oe)
	switch {
	case errors.Is(oe, errJTIUsed):
		return jtiUsedDescription
	case errors.Is(oe, errCodeRedeemed), inner != nil && inner.Error() == errCodeRedeemed.Error():
		return "the authorization code was already redeemed; the tokens it gave are revoked"
	case oe.Code == goidc.ErrorCodeInvalidClient && errors.Is(oe, goidc.ErrNotFound):
		return "the client assertion iss is not an onboarded client"
	case oe.Code == goidc.ErrorCodeInvalidClient && errors.Is(oe, jose.ErrCryptoFailure):
		return "the client assertion signature does not verify with the client's registered keys"
	case oe.Code == goidc.ErrorCodeInvalidGrant && errors.Is(oe, goidc.ErrNotFound):
		return "the authorization code is unknown, expired or revoked"
	case oe.Code == goidc.ErrorCodeInvalidGrant && inner != nil &&
		inner.Error() == "the authorization code belongs to a different client":
		return "the authorization code was not issued to this client"
	case inner != nil:
		return truncate(inner.Error(), 300)
	default:
		return oe.Description
	}
}

func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, desc})
}

// firstKey returns the first key of v, in sorted order, whose values fail
// (so that a refusal names the same parameter every time), or "" when
// none does. It neither allocates nor sorts.
func firstKey(v url.Values, fails func([]string) bool) string {
	first, found := "", false
	for k, vs := range v {
		if fails(vs) && (!found || k < first) {
			first, found = k, true
		}
	}
	return first
}
