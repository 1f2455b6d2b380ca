// Package admin owns the admin listener: Prometheus /metrics, /healthz,
// /readyz (a real store round-trip, through the ready function main passes
// in) and net/http/pprof under /debug/pprof/. It also owns the server's
// metric collectors (Metrics) and the HTTP middleware that feeds them.
//
// The admin listener is for operators only; bind it to a private address.
package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ReadyTimeout bounds one readiness check.
const ReadyTimeout = 2 * time.Second

// NewRegistry returns a registry holding the Go runtime and process
// collectors, ready for NewMetrics and NewHandler.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// NewHandler returns the admin listener's handler:
//
//	GET /metrics        Prometheus exposition of reg
//	GET /healthz        200 "ok" while the process serves
//	GET /readyz         200 "ready", or 503 "not ready: reason" when ready fails
//	    /debug/pprof/   net/http/pprof
//
// ready is called with a ReadyTimeout deadline; a nil ready is always ready.
// Its error text is shown to the caller, so it should be short and carry no
// secret (URL passwords are redacted all the same).
func NewHandler(reg *prometheus.Registry, ready func(ctx context.Context) error) http.Handler {
	return newHandler(reg, ready, ReadyTimeout)
}

func newHandler(reg *prometheus.Registry, ready func(ctx context.Context) error, timeout time.Duration) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		plain(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if ready == nil {
			plain(w, http.StatusOK, "ready")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		err := ready(ctx)
		if err == nil {
			plain(w, http.StatusOK, "ready")
			return
		}
		reason := sanitize(err.Error())
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			reason = fmt.Sprintf("readiness check timed out after %s", timeout)
		}
		plain(w, http.StatusServiceUnavailable, "not ready: "+reason)
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		plain(w, http.StatusOK, "numbergate admin: /metrics /healthz /readyz /debug/pprof/")
	})
	return mux
}

func plain(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintln(w, body)
}

var userinfoRE = regexp.MustCompile(`://([^/@\s:]*):[^/@\s]*@`)

// sanitize keeps a readiness reason to one short line without URL
// passwords.
func sanitize(s string) string {
	s = userinfoRE.ReplaceAllString(s, "://$1:xxxxx@")
	s = strings.Join(strings.Fields(s), " ")
	const max = 200
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}
