package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/luikyv/go-oidc/pkg/goidc"
	"github.com/luikyv/go-oidc/pkg/provider"

	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/server"
)

// Endpoint paths, relative to the issuer URL (the engine's defaults, which
// its discovery document names), routed by Routes.
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	JWKSPath      = "/jwks"
	AuthorizePath = "/authorize"
	TokenPath     = "/token"
)

// DefaultClockSkew is the tolerance for clients' clocks when Config sets
// none.
const DefaultClockSkew = 5 * time.Second

// Config is what the authorization server is built from.
type Config struct {
	// Issuer is the URL clients see, without a trailing slash.
	Issuer string
	Store  nv.Store
	// Resolver answers which subscriber is behind an /authorize request.
	Resolver nv.Resolver
	// ClientAddr gives the device's address for a request (the TCP peer,
	// or X-Forwarded-For behind a trusted proxy).
	ClientAddr func(*http.Request) netip.AddrPort
	// Enrichment gives header-enrichment values for a request (nil: none).
	Enrichment func(*http.Request) map[string]string
	// TokenLifetime of access tokens: at most (and by default) 300 s.
	TokenLifetime time.Duration
	// CodeLifetime of authorization codes: default 60 s.
	CodeLifetime time.Duration
	Logger       *slog.Logger
	// OnAuthorize is told the result of each /authorize that reached the
	// authentication step ("code_issued", "access_denied", ...) and the
	// network source that identified the device.
	OnAuthorize func(result, source string)
	// OnToken is told of each access token issued, as stored (it holds the
	// number: never log t.MSISDN), once it is stored with its usage record
	// (nv.UsageTokenIssued), which the server stores itself.
	OnToken func(ctx context.Context, t nv.AccessToken)
	// ClockSkew is how far a client's clock may run ahead of ours (iat,
	// nbf) and how long past its exp a jti is remembered. Default
	// DefaultClockSkew.
	ClockSkew time.Duration
	// Now is the clock for numbergate's own checks (default time.Now).
	Now func() time.Time
}

// Server is the authorization server.
type Server struct {
	cfg       Config
	log       *slog.Logger
	keys      *keys
	es        *engineStore
	op        *provider.Provider
	engine    http.Handler
	discovery []byte
}

// New loads (or creates, on first start) the signing keys from the store
// and builds the provider.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Resolver == nil || cfg.ClientAddr == nil {
		return nil, errors.New("authz: Store, Resolver and ClientAddr are required")
	}
	if cfg.TokenLifetime <= 0 {
		cfg.TokenLifetime = nv.MaxTokenLifetime
	}
	if cfg.TokenLifetime > nv.MaxTokenLifetime {
		return nil, fmt.Errorf("authz: token lifetime %s exceeds the 300 s CAMARA allows", cfg.TokenLifetime)
	}
	if cfg.CodeLifetime <= 0 {
		cfg.CodeLifetime = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	// Store and network lookups note an unavailable store in the request
	// (unavailable.go).
	cfg.Store, cfg.Resolver = flagStore{cfg.Store}, flagResolver{cfg.Resolver}
	k, err := loadOrCreateKeys(ctx, cfg.Store)
	if err != nil {
		return nil, fmt.Errorf("authz: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, keys: k}
	es := &engineStore{st: cfg.Store, tokenLifetime: cfg.TokenLifetime, retainAfterCode: cfg.TokenLifetime + cfg.ClockSkew, now: cfg.Now}
	s.es = es
	asymmetric := []goidc.SignatureAlgorithm{goidc.RS256, goidc.PS256, jose.EdDSA}

	s.op, err = provider.New(cfg.Issuer, es,
		k.jwks,
		provider.WithScopes(
			goidc.ScopeOpenID,
			goidc.NewScope(nv.ScopeVerify),
			goidc.NewScope(nv.ScopeDevicePhoneNumber),
			goidc.NewDynamicScope(purposeScopeID, func(s string) bool {
				return len(s) > len(nv.PurposePrefix) && s[:len(nv.PurposePrefix)] == nv.PurposePrefix
			}),
		),
		provider.WithAuthCodeGrant(es, goidc.ResponseTypeCode),
		provider.WithAuthCodeLifetime(int(cfg.CodeLifetime.Seconds())),
		provider.WithPKCE(goidc.CodeChallengeMethodSHA256),
		provider.WithPrivateKeyJWTAuthn(goidc.ES256, asymmetric...),
		// serveToken applies CAMARA's bounds first (exp at most 300 s
		// ahead, clock skew aside); the engine's own must not be stricter.
		provider.WithJWTLifetime(int((maxJWTLifetime + cfg.ClockSkew).Seconds())),
		provider.WithJWTLeewayTime(int(cfg.ClockSkew.Seconds())),
		provider.WithJTIConsumer(s.consumeAssertionJTI),
		provider.WithIDTokenSignatureAlgs(goidc.ES256),
		provider.WithIDTokenLifetime(int(nv.MaxTokenLifetime.Seconds())),
		provider.WithSubIdentifierTypes(goidc.SubIdentifierPairwise),
		provider.WithPairwiseSubject(k.pairwiseSubject),
		provider.WithOpaqueTokens(es),
		provider.WithTokenOptions(func(context.Context, *goidc.Grant, *goidc.Client) goidc.TokenOptions {
			return goidc.NewOpaqueTokenOptions(int(cfg.TokenLifetime.Seconds()))
		}),
		provider.WithTokenHandler(s.issueToken),
		provider.WithDCR(es),
		provider.WithPolicies(s.networkPolicy()),
		provider.WithIssuerResponseParameter(),
		provider.WithErrorRenderer(s.renderError),
		provider.WithErrorHandler(s.handleEngineError),
	)
	if err != nil {
		return nil, fmt.Errorf("authz: build provider: %w", err)
	}
	s.engine = s.op.Handler()
	if s.discovery, err = s.buildDiscovery(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) now() time.Time { return s.cfg.Now() }

// MaxBodyBytes bounds the form body of /authorize and /token.
const MaxBodyBytes = 64 << 10

// Routes are the authorization server's endpoints, and only those the
// CAMARA profile needs (the engine's others, registration included, are
// not routed): the one definition of their paths and methods, mounted by
// server.Routes.
func (s *Server) Routes() []server.Route {
	authorize := http.MaxBytesHandler(s.guardUnavailable(false, http.HandlerFunc(s.serveAuthorize)), MaxBodyBytes)
	return []server.Route{
		{Name: "discovery", Pattern: "GET " + DiscoveryPath, Handler: http.HandlerFunc(s.serveDiscovery)},
		{Name: "jwks", Pattern: "GET " + JWKSPath, Handler: s.engine},
		{Name: "authorize", Pattern: "GET " + AuthorizePath, Handler: authorize},
		{Name: "authorize", Pattern: "POST " + AuthorizePath, Handler: authorize},
		{Name: "token", Pattern: "POST " + TokenPath, Handler: http.MaxBytesHandler(s.guardUnavailable(true, http.HandlerFunc(s.serveToken)), MaxBodyBytes)},
	}
}

// buildDiscovery renders the engine's discovery document once and trims it
// to what numbergate really serves.
func (s *Server) buildDiscovery() ([]byte, error) {
	req, _ := http.NewRequest(http.MethodGet, s.cfg.Issuer+DiscoveryPath, nil)
	rec := &bufferWriter{header: http.Header{}}
	s.engine.ServeHTTP(rec, req)
	var doc map[string]any
	if err := json.Unmarshal(rec.body.Bytes(), &doc); err != nil {
		return nil, fmt.Errorf("authz: discovery document: %w", err)
	}
	delete(doc, "registration_endpoint") // clients are onboarded by the operator
	delete(doc, "userinfo_endpoint")     // NV tokens are single use for the API
	doc["scopes_supported"] = nv.Scopes
	doc["subject_types_supported"] = []string{"pairwise"}
	doc["code_challenge_methods_supported"] = []string{"S256"}
	doc["token_endpoint_auth_methods_supported"] = []string{"private_key_jwt"}
	doc["grant_types_supported"] = []string{"authorization_code"}
	doc["response_types_supported"] = []string{"code"}
	doc["request_parameter_supported"] = true
	doc["request_object_signing_alg_values_supported"] = requestObjectAlgs
	doc["claims_parameter_supported"] = false
	doc["request_uri_parameter_supported"] = false
	doc["response_modes_supported"] = []string{"query"}
	return json.MarshalIndent(doc, "", "  ")
}

func (s *Server) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(s.discovery)
}

// renderError shows errors that must not be redirected (unknown client,
// unregistered redirect_uri, ...) as a page, per RFC 6749 §4.1.2.1.
func (s *Server) renderError(w http.ResponseWriter, _ *http.Request, err error) error {
	code, desc := "server_error", "the request could not be processed"
	var oe goidc.Error
	if errors.As(err, &oe) {
		code, desc = string(oe.Code), oe.Description
	}
	status := http.StatusBadRequest
	if code == "server_error" || code == string(goidc.ErrorCodeInternalError) {
		status = http.StatusInternalServerError
	}
	return s.renderPage(w, status, code, desc)
}

func (s *Server) renderPage(w http.ResponseWriter, status int, code, desc string) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return errorPage.Execute(w, struct{ Code, Description string }{code, desc})
}

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Authorization error</title></head>
<body><h1>Authorization error</h1>
<p>The request could not be sent back to the application: <code>{{.Code}}</code></p>
<p>{{.Description}}</p></body></html>
`))

// bufferWriter captures a handler's response in memory.
type bufferWriter struct {
	header http.Header
	body   bytes.Buffer
	status int
}

// bufferWriters are reused: each /authorize and /token response is held
// twice (guardUnavailable, then the engine's answer), and its header map
// and body would otherwise be allocated and grown anew each time.
var bufferWriters = sync.Pool{New: func() any { return &bufferWriter{header: http.Header{}} }}

// newBufferWriter returns an empty bufferWriter; release it once its
// answer is sent.
func newBufferWriter() *bufferWriter { return bufferWriters.Get().(*bufferWriter) }

// release empties b and returns it for reuse. The header values already
// handed to a response stay the response's (the map is cleared, not the
// slices); an unusually large body is not kept.
func (b *bufferWriter) release() {
	if b.body.Cap() > 64<<10 {
		return
	}
	clear(b.header)
	b.body.Reset()
	b.status = 0
	bufferWriters.Put(b)
}

func (b *bufferWriter) Header() http.Header         { return b.header }
func (b *bufferWriter) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferWriter) WriteHeader(status int)      { b.status = status }

// copyTo sends the captured response.
func (b *bufferWriter) copyTo(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}
