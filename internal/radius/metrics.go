package radius

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the server's Prometheus collectors, the only record of its
// counters (tests read them too).
type Metrics struct {
	// Packets counts accounting packets by result: the outcome of an
	// answered packet (start, interim, stop, accounting_on, accounting_off,
	// other, duplicate: answered from the replay cache, stale: acknowledged
	// but older than the idle timeout, foreign: an Interim-Update for an
	// address another client holds, not applied) or the reason one was
	// dropped (the Drop* constants) (numbergate_radius_packets_total{result}).
	Packets *prometheus.CounterVec
	// MessageAuthenticators counts packets whose Message-Authenticator was
	// present and verified
	// (numbergate_radius_message_authenticators_verified_total).
	MessageAuthenticators prometheus.Counter
	// SessionsExpired counts sessions removed after their idle timeout
	// (numbergate_network_sessions_expired_total).
	SessionsExpired prometheus.Counter
}

// Outcomes of answered packets (Metrics.Packets' result label, beside the
// Drop* reasons).
const (
	OutcomeStart         = "start"
	OutcomeInterim       = "interim"
	OutcomeStop          = "stop"
	OutcomeAccountingOn  = "accounting_on"
	OutcomeAccountingOff = "accounting_off"
	OutcomeOther         = "other"
	OutcomeDuplicate     = "duplicate"
	OutcomeStale         = "stale"
	OutcomeForeign       = "foreign"
)

// Results are every value of Metrics.Packets' result label.
var Results = []string{
	OutcomeStart, OutcomeInterim, OutcomeStop, OutcomeAccountingOn, OutcomeAccountingOff,
	OutcomeOther, OutcomeDuplicate, OutcomeStale, OutcomeForeign,
	DropUnknownClient, DropNotAccounting, DropMalformed, DropBadAuthenticator, DropBadMessageAuth,
	DropMissingMessageAuth, DropMissingAttribute, DropBadCallingStationID, DropOverload,
	DropInFlight, DropStoreError, DropStoreUnavailable, DropPanic,
}

// NewMetrics creates the collectors and registers them with reg (nil
// registers nothing).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Packets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "numbergate_radius_packets_total",
			Help: "RADIUS accounting packets by result: answered (start, interim, stop, accounting_on, accounting_off, other, duplicate, stale, foreign) or dropped (unknown_client, not_accounting, malformed, bad_authenticator, bad_message_authenticator, missing_message_authenticator, missing_attribute, bad_calling_station_id, overload, in_flight, store_error, store_unavailable, panic).",
		}, []string{"result"}),
		MessageAuthenticators: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "numbergate_radius_message_authenticators_verified_total",
			Help: "RADIUS accounting packets whose Message-Authenticator was present and verified.",
		}),
		SessionsExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "numbergate_network_sessions_expired_total",
			Help: "Network sessions removed after their idle timeout.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Packets, m.MessageAuthenticators, m.SessionsExpired)
	}
	return m
}
