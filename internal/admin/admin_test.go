package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestMetricsExposed(t *testing.T) {
	reg := NewRegistry()
	m := NewMetrics(reg)
	m.TokensIssued.Inc()
	m.Authorizations.WithLabelValues(AuthorizationCodeIssued, "static").Inc()
	m.APICalls.WithLabelValues("verify", "OK").Inc()

	api := m.Instrument("verify", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	api.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/number-verification/v2/verify", nil))

	code, body := get(t, NewHandler(reg, nil), "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`numbergate_http_requests_total{code="418",handler="verify"} 1`,
		`numbergate_http_request_duration_seconds_count{handler="verify"} 1`,
		`numbergate_authorizations_total{result="code_issued",source="static"} 1`,
		`numbergate_tokens_issued_total 1`,
		`numbergate_api_calls_total{code="OK",operation="verify"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	reg := prometheus.NewRegistry()
	var readyErr error
	h := NewHandler(reg, func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("ready called without a deadline")
		}
		return readyErr
	})

	if code, body := get(t, h, "/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get(t, h, "/readyz"); code != 200 || strings.TrimSpace(body) != "ready" {
		t.Errorf("/readyz: %d %q", code, body)
	}

	readyErr = errors.New("store: ping postgres://ng:hunter2@db.example:5432/ng: connection refused\nmore")
	code, body := get(t, h, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "not ready: store: ping") {
		t.Errorf("/readyz failing: %d %q", code, body)
	}
	if strings.Contains(body, "hunter2") || strings.Count(body, "\n") != 1 {
		t.Errorf("/readyz reason not sanitized: %q", body)
	}
}

func TestReadinessTimeout(t *testing.T) {
	h := newHandler(prometheus.NewRegistry(), func(ctx context.Context) error {
		<-ctx.Done() // a store that hangs
		return fmt.Errorf("ping: %w", ctx.Err())
	}, 20*time.Millisecond)
	code, body := get(t, h, "/readyz")
	if code != http.StatusServiceUnavailable || strings.TrimSpace(body) != "not ready: readiness check timed out after 20ms" {
		t.Errorf("/readyz: %d %q", code, body)
	}
}

func TestPprofAndUnknown(t *testing.T) {
	h := NewHandler(prometheus.NewRegistry(), nil)
	if code, body := get(t, h, "/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/: %d", code)
	}
	if code, _ := get(t, h, "/nope"); code != http.StatusNotFound {
		t.Errorf("/nope: %d", code)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/healthz", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: %d", rec.Code)
	}
}

func TestInstrumentNil(t *testing.T) {
	var m *Metrics
	h := http.NotFoundHandler()
	if got := m.Instrument("x", h); got == nil {
		t.Fatal("nil handler")
	}
}

// TestInstrumentCodes: the code label is the status sent, 200 when the
// handler only wrote a body or wrote nothing; a flush reaches the
// connection through the wrapper; every request is timed.
func TestInstrumentCodes(t *testing.T) {
	reg := NewRegistry()
	m := NewMetrics(reg)
	handlers := map[string]http.HandlerFunc{
		"teapot": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusTeapot)
			_, _ = w.Write([]byte("x"))
		},
		"body":    func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("x")) },
		"nothing": func(w http.ResponseWriter, r *http.Request) {},
		"flush": func(w http.ResponseWriter, r *http.Request) {
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Errorf("flush through the wrapper: %v", err)
			}
		},
	}
	for name, h := range handlers {
		rec := httptest.NewRecorder()
		m.Instrument(name, h).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if name == "flush" && !rec.Flushed {
			t.Error("flush did not reach the recorder")
		}
	}
	_, body := get(t, NewHandler(reg, nil), "/metrics")
	for _, want := range []string{
		`numbergate_http_requests_total{code="418",handler="teapot"} 1`,
		`numbergate_http_requests_total{code="200",handler="body"} 1`,
		`numbergate_http_requests_total{code="200",handler="nothing"} 1`,
		`numbergate_http_requests_total{code="200",handler="flush"} 1`,
		`numbergate_http_request_duration_seconds_count{handler="nothing"} 1`,
		`numbergate_http_request_duration_seconds_count{handler="teapot"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
