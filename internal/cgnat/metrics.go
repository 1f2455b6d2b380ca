package cgnat

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the ingester's Prometheus collectors, the only record of its
// counters (tests read them too).
type Metrics struct {
	// Records counts records by result (numbergate_cgnat_records_total
	// {result}): ResultAlloc, ResultRelease, ResultUnmatched (a RELEASE
	// with no open allocation), ResultMalformed (skipped) and
	// ResultStoreError (not stored).
	Records *prometheus.CounterVec
	// Dropped counts syslog datagrams dropped unread
	// and records dropped unstored (numbergate_cgnat_datagrams_dropped_total
	// {reason}): DropUnknownSender, DropOverload, DropPanic.
	Dropped *prometheus.CounterVec
}

// Values of Metrics.Records' result label.
const (
	ResultAlloc      = "alloc"
	ResultRelease    = "release"
	ResultUnmatched  = "unmatched"
	ResultMalformed  = "malformed"
	ResultStoreError = "store_error"
)

// Values of Metrics.Dropped's reason label.
const (
	// DropUnknownSender is a datagram from outside Config.Senders.
	DropUnknownSender = "unknown_sender"
	// DropOverload is a record not stored because the store workers' queue
	// was full (syslog over UDP is not acknowledged; the NAT does not
	// resend it).
	DropOverload = "overload"
	// DropPanic is a datagram or record whose handling panicked (a bug).
	DropPanic = "panic"
)

// NewMetrics creates the collectors and registers them with reg (nil
// registers nothing).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "numbergate_cgnat_records_total",
			Help: "CGNAT port-block records by result (alloc, release, unmatched, malformed, store_error).",
		}, []string{"result"}),
		Dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "numbergate_cgnat_datagrams_dropped_total",
			Help: "CGNAT syslog dropped, by reason (unknown_sender: a datagram not from a configured sender; overload: a record not stored because the store workers' queue was full; panic).",
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.Records, m.Dropped)
	}
	return m
}
