package authz

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/numbergate/numbergate/internal/nv"
)

// maxJWTLifetime is CAMARA's bound on request objects and client
// assertions: exp at most 300 s ahead, exp - iat at most 300 s.
const maxJWTLifetime = 300 * time.Second

// errServerError is RFC 6749 §4.1.2.1's server_error (the engine's own
// internal_error is not an OAuth code). Its cause is logged, never sent.
const errServerError goidc.ErrorCode = "server_error"

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
		if clientGone(ctx, err) {
			result = "client_closed_request"
		}
		s.logFault(ctx, "authorize: client lookup failed", err, "client_id", c.ID)
		return goidc.StatusFailure, goidc.NewError(errServerError, "the client could not be loaded")
	}
	// serveAuthorize already checked the scopes; this gives the purpose.
	purpose, err := checkScopes(as.Scopes, client)
	if err != nil {
		result = "invalid_scope"
		return goidc.StatusFailure, goidc.NewError(goidc.ErrorCodeInvalidScope, err.Error())
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
		if clientGone(ctx, err) {
			result = "client_closed_request"
		}
		s.logFault(ctx, "authorize: network identity lookup failed", err, "client_id", c.ID)
		return goidc.StatusFailure, goidc.NewError(errServerError, "the network identity could not be looked up")
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
	if s.log.Enabled(ctx, slog.LevelInfo) { // the arguments allocate even when not logged
		s.log.InfoContext(ctx, "authorize: device identified", "client_id", c.ID, "source", id.Source, "method", string(id.Method))
	}
	return goidc.StatusSuccess, nil
}

// checkScopes enforces CAMARA's purpose rules: exactly one dpv: purpose,
// onboarded for the client; every other scope offered by the server and
// onboarded for the client. It returns the purpose.
func checkScopes(scope string, c nv.Client) (string, error) {
	var purposes []string
	for _, s := range nv.SplitScope(scope) {
		if strings.HasPrefix(s, nv.PurposePrefix) {
			purposes = append(purposes, s)
			continue
		}
		if !slices.Contains(nv.Scopes, s) {
			return "", fmt.Errorf("scope %q is not offered (offered: %s, and one dpv:<Purpose>)", s, strings.Join(nv.Scopes, " "))
		}
		if !c.AllowsScope(s) {
			return "", fmt.Errorf("the client is not onboarded for scope %q", s)
		}
	}
	switch len(purposes) {
	case 0:
		return "", errors.New("exactly one purpose is required as a scope value dpv:<Purpose>, e.g. dpv:FraudPreventionAndDetection")
	case 1:
	default:
		return "", fmt.Errorf("exactly one dpv: purpose is allowed per request (got %s)", strings.Join(purposes, " "))
	}
	p := purposes[0]
	if len(p) == len(nv.PurposePrefix) || !c.AllowsPurpose(p) {
		return "", fmt.Errorf("the client is not onboarded for purpose %q", p)
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
