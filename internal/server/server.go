// Package server holds numbergate's routes and listeners: the public
// listener (authorization server and the CAMARA API, plus the sandbox's
// test-token endpoint in sandbox mode only) and the admin listener
// (metrics, health, readiness, pprof). It starts them and drains them on
// shutdown.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	apidoc "github.com/numbergate/numbergate/api"
)

// Route is one pattern of the public listener ("GET /jwks") with the name
// its metrics and limits know it by. A package that serves several
// endpoints (authz) lists them as Routes, each defined once there; Routes
// mounts them.
type Route struct {
	Name    string
	Pattern string
	Handler http.Handler
}

// Routes is the public handler tree, in one place.
type Routes struct {
	// Authz are the authorization server's routes (authz.Server.Routes:
	// discovery, /jwks, /authorize, /token).
	Authz []Route
	// API serves /number-verification/v2/ (nil: not routed, in tests).
	API http.Handler
	// SandboxTokens serves /sandbox/tokens (POST); nil outside sandbox mode.
	SandboxTokens http.Handler
	// Instrument wraps each route with metrics (nil: none).
	Instrument func(name string, h http.Handler) http.Handler
	// Guard wraps each route, inside Instrument, with rate limits and
	// quotas (nil: none; limits.Guard.Wrap in serve).
	Guard func(name string, h http.Handler) http.Handler
}

// Handler builds the public handler.
func (rt Routes) Handler() http.Handler {
	instrument := rt.Instrument
	if instrument == nil {
		instrument = func(_ string, h http.Handler) http.Handler { return h }
	}
	wrap := instrument
	if rt.Guard != nil {
		wrap = func(name string, h http.Handler) http.Handler { return instrument(name, rt.Guard(name, h)) }
	}
	mux := http.NewServeMux()
	allowed := map[string][]string{} // path -> methods routed
	for _, r := range rt.Authz {
		mux.Handle(r.Pattern, wrap(r.Name, r.Handler))
		if method, path, ok := strings.Cut(r.Pattern, " "); ok {
			allowed[path] = append(allowed[path], method)
		}
	}
	for path, methods := range allowed {
		mux.Handle(path, instrument("method_not_allowed", methodNotAllowed(methods)))
	}
	if rt.API != nil {
		mux.Handle("/number-verification/v2/", wrap("api", rt.API))
	}
	mux.Handle("GET /openapi.yaml", wrap("openapi", http.HandlerFunc(serveOpenAPI)))
	if rt.SandboxTokens != nil {
		mux.Handle("/sandbox/tokens", wrap("sandbox_tokens", rt.SandboxTokens))
	}
	mux.Handle("/", wrap("not_found", http.HandlerFunc(notFound)))
	return mux
}

// methodNotAllowed answers a routed path asked with another method: 405
// with Allow, and an OAuth error body (these are the authorization
// server's endpoints).
func methodNotAllowed(methods []string) http.Handler {
	allow := strings.Join(methods, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Allow", allow)
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusMethodNotAllowed)
		_, _ = w.Write([]byte(`{"error":"invalid_request","error_description":"this endpoint takes ` + allow + `"}`))
	})
}

// notFound answers every unknown path with the CAMARA error body (the API
// answers its own unknown paths the same way), so a client never has to
// parse a text page.
func notFound(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(`{"status":404,"code":"NOT_FOUND","message":"The specified resource is not found."}`))
}

// Listener pairs a bound listener with its handler.
type Listener struct {
	Name     string
	Listener net.Listener
	Handler  http.Handler
	// TLS, when set, serves HTTPS (HTTP/2 and HTTP/1.1) on the listener.
	TLS *tls.Config
}

// Serve serves every listener until ctx is done, then stops accepting,
// lets in-flight requests finish (up to drain) and returns. It returns the
// first serving error, if a listener fails.
func Serve(ctx context.Context, log *slog.Logger, drain time.Duration, listeners ...Listener) error {
	errc := make(chan error, len(listeners))
	servers := make([]*http.Server, len(listeners))
	for i, l := range listeners {
		srv := &http.Server{
			Handler:           l.Handler,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       15 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		servers[i] = srv
		scheme := "http"
		if l.TLS != nil {
			srv.TLSConfig = l.TLS
			scheme = "https"
		}
		log.Info("listening", "listener", l.Name, "addr", l.Listener.Addr().String(), "scheme", scheme)
		go func(l Listener) {
			var err error
			if l.TLS != nil {
				err = srv.ServeTLS(l.Listener, "", "")
			} else {
				err = srv.Serve(l.Listener)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}(l)
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	log.Info("shutting down: draining in-flight requests", "timeout", drain.String())
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("shutdown did not finish cleanly", "err", err)
			_ = srv.Close()
		}
	}
	return serveErr
}

// serveOpenAPI publishes the OpenAPI document of the API this server
// implements (api/openapi.yaml, embedded at build time).
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(apidoc.OpenAPI)
}
