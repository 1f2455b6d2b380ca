package admin

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Label values of Metrics.Authorizations' result label.
const (
	AuthorizationCodeIssued   = "code_issued"
	AuthorizationAccessDenied = "access_denied"
	AuthorizationError        = "error"
)

// Metrics holds the HTTP side's collectors (the network feeds register
// their own: radius.NewMetrics, cgnat.NewMetrics). Every name starts
// "numbergate_".
// Label values must come from small fixed sets (never a client id, an
// address or a number).
type Metrics struct {
	// HTTPRequests counts public HTTP requests by handler and status code
	// (numbergate_http_requests_total{handler,code}).
	HTTPRequests *prometheus.CounterVec
	// HTTPDuration observes request latency by handler
	// (numbergate_http_request_duration_seconds{handler}).
	HTTPDuration *prometheus.HistogramVec
	// Authorizations counts /authorize outcomes by result (code_issued,
	// or the OAuth error: access_denied, invalid_request, invalid_scope,
	// invalid_request_object, invalid_client, unsupported_response_type,
	// request_uri_not_supported, temporarily_unavailable, server_error; or
	// error) and network source ("" when none identified the device)
	// (numbergate_authorizations_total{result,source}).
	Authorizations *prometheus.CounterVec
	// TokensIssued counts access tokens issued (numbergate_tokens_issued_total).
	TokensIssued prometheus.Counter
	// APICalls counts Number Verification API calls by operation (verify,
	// device_phone_number) and CAMARA code ("OK" on success)
	// (numbergate_api_calls_total{operation,code}).
	APICalls *prometheus.CounterVec
	// Limited counts requests refused by a rate limit or quota, by route
	// (authorize, token, api) and reason (rate, quota)
	// (numbergate_limited_requests_total{route,reason}).
	Limited *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg (a nil reg
// registers nothing, for tests). It panics if a name is already
// registered, as prometheus.MustRegister does.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "numbergate_http_requests_total",
			Help: "Public HTTP requests by handler and status code.",
		}, []string{"handler", "code"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "numbergate_http_request_duration_seconds",
			Help:    "Public HTTP request latency by handler.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"handler"}),
		Authorizations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "numbergate_authorizations_total",
			Help: "Authorization requests by result (code_issued, or the OAuth error: access_denied, invalid_request, invalid_scope, invalid_request_object, invalid_client, unsupported_response_type, request_uri_not_supported, temporarily_unavailable, server_error; or error) and the network source that identified the device.",
		}, []string{"result", "source"}),
		TokensIssued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "numbergate_tokens_issued_total",
			Help: "Access tokens issued.",
		}),
		APICalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "numbergate_api_calls_total",
			Help: "Number Verification API calls by operation and result code.",
		}, []string{"operation", "code"}),
		Limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "numbergate_limited_requests_total",
			Help: "Requests refused by a rate limit (reason rate) or a client's daily quota (reason quota), by route.",
		}, []string{"route", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.HTTPRequests, m.HTTPDuration, m.Authorizations, m.TokensIssued,
			m.APICalls)
		reg.MustRegister(m.Limited)
	}
	return m
}

// Instrument wraps h so each request is counted in HTTPRequests and timed
// in HTTPDuration under handlerName (a fixed name such as "authorize",
// never a path with ids in it). A nil m returns h unchanged.
//
// It records what promhttp's InstrumentHandlerCounter and
// InstrumentHandlerDuration would (the status code sent, 200 when the
// handler wrote nothing), with one small wrapper per request instead of
// their label maps and delegators.
func (m *Metrics) Instrument(handlerName string, h http.Handler) http.Handler {
	if m == nil {
		return h
	}
	requests := m.HTTPRequests.MustCurryWith(prometheus.Labels{"handler": handlerName})
	duration := m.HTTPDuration.WithLabelValues(handlerName)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		duration.Observe(time.Since(start).Seconds())
		requests.WithLabelValues(codeLabel(sw.status)).Inc()
	})
}

// statusWriter remembers the status a handler sent.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

// Flush lets a handler flush through the wrapper.
func (s *statusWriter) Flush() {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// codeLabels are the code label values of the statuses 100-599, made once.
var codeLabels = func() []string {
	l := make([]string, 600)
	for i := 100; i < len(l); i++ {
		l[i] = strconv.Itoa(i)
	}
	return l
}()

// codeLabel is the code label of a status (0, nothing written, is 200).
func codeLabel(status int) string {
	switch {
	case status == 0:
		return "200"
	case status >= 100 && status < len(codeLabels):
		return codeLabels[status]
	}
	return strconv.Itoa(status)
}
