package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/numbergate/numbergate/internal/nv"
)

// maxJWTLifetime is CAMARA's bound on request objects and client
// assertions: exp at most 300 s ahead, exp - iat at most 300 s.
const maxJWTLifetime = 300 * time.Second

// networkPolicy is the only authentication policy: network-based
// authentication, no interaction.
func (s *Server) networkPolicy() goidc.AuthnPolicy {
	return goidc.NewPolicy("network",
		func(*http.Request, *goidc.AuthnSession, *goidc.Client) bool { return true },
		s.authenticate)
}

// authenticate runs after the engine validated the client, redirect_uri,
// response_type, PKCE parameters and the request object's signature. Every
// error it returns is redirected to the client with its OAuth code.
func (s *Server) authenticate(_ http.ResponseWriter, r *http.Request, as *goidc.AuthnSession, c *goidc.Client) (goidc.Status, error) {
	ctx := r.Context()
	result, source := "error", ""
	defer func() {
		if s.cfg.OnAuthorize != nil {
			s.cfg.OnAuthorize(result, source)
		}
	}()

	client, err := s.cfg.Store.Client(ctx, c.ID)
	if err != nil {
		return goidc.StatusFailure, goidc.WrapError(goidc.ErrorCodeInternalError, "the client could not be loaded", err)
	}
	purpose, err := checkScopes(as.Scopes, client)
	if err != nil {
		result = "invalid_scope"
		return goidc.StatusFailure, err
	}
	if client.RequirePKCE && as.CodeChallenge == "" {
		result = "invalid_request"
		return goidc.StatusFailure, goidc.NewError(goidc.ErrorCodeInvalidRequest, "this client must use PKCE: code_challenge with code_challenge_method=S256 is required")
	}

	conn := s.connection(r, as.LoginHint)
	id, err := s.cfg.Resolver.Resolve(ctx, conn)
	switch {
	case errors.Is(err, nv.ErrUnknownDevice):
		result = "access_denied"
		s.log.InfoContext(ctx, "authorize: device not identified", "client_id", c.ID, "addr", conn.Addr.Addr().String())
		return goidc.StatusFailure, goidc.NewError(goidc.ErrorCodeAccessDenied,
			"the device could not be identified by the mobile network: the request must come from the device over mobile data")
	case nv.ErrorCode(err) == nv.CodeInvalidArgument:
		result = "invalid_request"
		var e *nv.Error
		errors.As(err, &e)
		return goidc.StatusFailure, goidc.NewError(goidc.ErrorCodeInvalidRequest, e.Message)
	case err != nil:
		s.log.ErrorContext(ctx, "authorize: network identity lookup failed", "client_id", c.ID, "err", err)
		return goidc.StatusFailure, goidc.WrapError(goidc.ErrorCodeInternalError, "the network identity could not be looked up", err)
	}
	source = id.Source
	result = "code_issued"

	as.Subject = s.keys.subscriberID(id.MSISDN)
	as.GrantedScopes = as.Scopes
	if as.Store == nil {
		as.Store = map[string]any{}
	}
	as.Store[storeMSISDN] = string(id.MSISDN)
	as.Store[storeMethod] = string(id.Method)
	as.Store[storeSource] = id.Source
	as.Store[storePurpose] = purpose
	s.log.InfoContext(ctx, "authorize: device identified", "client_id", c.ID, "source", id.Source, "method", string(id.Method))
	return goidc.StatusSuccess, nil
}

// checkScopes enforces CAMARA's purpose rules: exactly one dpv: purpose,
// onboarded for the client; every other scope onboarded for the client
// (the engine has already rejected scopes the server does not offer).
func checkScopes(scope string, c nv.Client) (string, error) {
	var purposes []string
	for _, s := range nv.SplitScope(scope) {
		if strings.HasPrefix(s, nv.PurposePrefix) {
			purposes = append(purposes, s)
			continue
		}
		if !c.AllowsScope(s) {
			return "", goidc.NewError(goidc.ErrorCodeInvalidScope, fmt.Sprintf("the client is not onboarded for scope %q", s))
		}
	}
	switch len(purposes) {
	case 0:
		return "", goidc.NewError(goidc.ErrorCodeInvalidScope, "exactly one purpose is required as a scope value dpv:<Purpose>, e.g. dpv:FraudPreventionAndDetection")
	case 1:
	default:
		return "", goidc.NewError(goidc.ErrorCodeInvalidScope, "exactly one dpv: purpose is allowed per request")
	}
	p := purposes[0]
	if len(p) == len(nv.PurposePrefix) || !c.AllowsPurpose(p) {
		return "", goidc.NewError(goidc.ErrorCodeInvalidScope, fmt.Sprintf("the client is not onboarded for purpose %q", p))
	}
	return p, nil
}

// connection describes the device's connection for the resolver.
func (s *Server) connection(r *http.Request, loginHint string) nv.Connection {
	addr := s.cfg.ClientAddr(r)
	conn := nv.Connection{Addr: addr, LoginHint: loginHint, At: s.now()}
	if s.cfg.Enrichment != nil {
		conn.Enrichment = s.cfg.Enrichment(r)
	}
	return conn
}

// checkAssertion rejects a client assertion whose lifetime breaks CAMARA's
// bounds before the engine consumes its jti, so a rejected assertion
// changes nothing stored. The engine then verifies signature, iss, sub, aud
// and the jti. Returns "" when the request may go on.
func (s *Server) checkAssertion(assertion string) (assertionInfo, string) {
	tok, err := jwt.ParseSigned(assertion, requestObjectAlgs)
	if err != nil {
		return assertionInfo{}, "the client assertion must be a JWT signed with ES256, RS256, PS256 or EdDSA"
	}
	var claims jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil {
		return assertionInfo{}, "the client assertion claims are unreadable"
	}
	now := s.now()
	switch {
	case claims.Expiry == nil:
		return assertionInfo{}, "the client assertion must carry exp"
	case claims.ID == "":
		return assertionInfo{}, "the client assertion must carry jti"
	case claims.Expiry.Time().Sub(now) > maxJWTLifetime:
		return assertionInfo{}, "the client assertion exp must be at most 300 seconds ahead"
	case claims.IssuedAt != nil && claims.Expiry.Time().Sub(claims.IssuedAt.Time()) > maxJWTLifetime:
		return assertionInfo{}, "the client assertion lifetime (exp - iat) must not exceed 300 seconds"
	}
	return assertionInfo{issuer: claims.Issuer, jti: claims.ID, exp: claims.Expiry.Time()}, ""
}

// consumeJTI records the issuer's jti until the JWT's exp plus the clock
// skew, so that it cannot be replayed while any clock could still accept it.
func (s *Server) consumeJTI(ctx context.Context, issuer, jti string, exp time.Time) error {
	err := s.cfg.Store.ConsumeJTI(ctx, issuer, jti, exp.Add(s.cfg.ClockSkew), s.now())
	if errors.Is(err, nv.ErrConsumed) {
		return errors.New("the jti was already used")
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
// issuer read by serveToken is the authenticated client.
func (s *Server) consumeAssertionJTI(ctx context.Context, jti string) error {
	a, ok := ctx.Value(assertionKey{}).(assertionInfo)
	if !ok || a.jti != jti {
		return errors.New("the client assertion was not checked before its jti")
	}
	return s.consumeJTI(ctx, a.issuer, jti, a.exp)
}
