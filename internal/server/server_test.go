package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// named answers with its name, so a test sees which handler ran.
func named(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, name) })
}

func testRoutes() Routes {
	return Routes{
		Authz: []Route{
			{Name: "discovery", Pattern: "GET /.well-known/openid-configuration", Handler: named("discovery")},
			{Name: "authorize", Pattern: "GET /authorize", Handler: named("authorize")},
			{Name: "authorize", Pattern: "POST /authorize", Handler: named("authorize")},
			{Name: "token", Pattern: "POST /token", Handler: named("token")},
		},
		API: named("api"),
	}
}

func serve(h http.Handler, method, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

// TestRoutes: each route reaches its handler with its methods only; another
// method is 405 with Allow; an unknown path is the CAMARA 404; the sandbox
// route exists only when set.
func TestRoutes(t *testing.T) {
	h := testRoutes().Handler()
	for _, tt := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/.well-known/openid-configuration", 200, "discovery"},
		{"GET", "/authorize", 200, "authorize"},
		{"POST", "/authorize", 200, "authorize"},
		{"POST", "/token", 200, "token"},
		{"GET", "/number-verification/v2/verify", 200, "api"},
		{"GET", "/token", 405, `"error":"invalid_request"`},
		{"PUT", "/authorize", 405, "GET, POST"},
		{"DELETE", "/.well-known/openid-configuration", 405, "GET"},
		{"GET", "/register", 404, `"code":"NOT_FOUND"`},
		{"POST", "/sandbox/tokens", 404, `"code":"NOT_FOUND"`},
		{"GET", "/openapi.yaml", 200, "openapi"},
	} {
		rec := serve(h, tt.method, tt.path)
		if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.body) {
			t.Errorf("%s %s: %d %q, want %d with %q", tt.method, tt.path, rec.Code, rec.Body, tt.status, tt.body)
		}
		if rec.Code == 405 && rec.Header().Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", tt.method, tt.path)
		}
	}
	rt := testRoutes()
	rt.SandboxTokens = named("sandbox")
	if rec := serve(rt.Handler(), "POST", "/sandbox/tokens"); rec.Body.String() != "sandbox" {
		t.Errorf("sandbox tokens: %d %s", rec.Code, rec.Body)
	}
}

// TestWrappers: Instrument wraps every route (and the refusals) by name,
// Guard every route but the refusals, inside Instrument.
func TestWrappers(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	rt := testRoutes()
	rt.Instrument = func(name string, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, "instrument:"+name)
			mu.Unlock()
			h.ServeHTTP(w, r)
		})
	}
	rt.Guard = func(name string, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, "guard:"+name)
			mu.Unlock()
			h.ServeHTTP(w, r)
		})
	}
	h := rt.Handler()
	for _, tt := range []struct {
		method, path string
		want         string
	}{
		{"POST", "/token", "instrument:token guard:token"},
		{"GET", "/authorize", "instrument:authorize guard:authorize"},
		{"GET", "/token", "instrument:method_not_allowed"},
		{"GET", "/nope", "instrument:not_found guard:not_found"},
	} {
		seen = nil
		serve(h, tt.method, tt.path)
		if got := strings.Join(seen, " "); got != tt.want {
			t.Errorf("%s %s: %s, want %s", tt.method, tt.path, got, tt.want)
		}
	}
}

// TestServeDrains: Serve answers until its context ends, then lets an
// in-flight request finish before it returns.
func TestServeDrains(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		<-release
		_, _ = io.WriteString(w, "done")
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, slog.New(slog.DiscardHandler), 5*time.Second, Listener{Name: "public", Listener: ln, Handler: slow})
	}()
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-started
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Serve returned before the in-flight request finished: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if body := <-got; body != "done" {
		t.Errorf("in-flight request: %s", body)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
