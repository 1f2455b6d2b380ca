package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/sqlite"
)

// statMetric is one metric read from a store's stats snapshot S.
type statMetric[S any] struct {
	name, help string
	kind       prometheus.ValueType // CounterValue or GaugeValue
	value      func(S) float64
}

// registerStatMetrics registers one collector per metric, each taking a
// fresh snapshot with stats when scraped.
func registerStatMetrics[S any](reg prometheus.Registerer, stats func() S, metrics []statMetric[S]) {
	for _, m := range metrics {
		f := func() float64 { return m.value(stats()) }
		if m.kind == prometheus.CounterValue {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: m.name, Help: m.help}, f))
		} else {
			reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: m.name, Help: m.help}, f))
		}
	}
}

// registerWritePathMetrics exports the embedded store's group-commit
// counters (a store without them, such as another backend, exports none):
// the write queue is the backpressure every writer sees.
func registerWritePathMetrics(reg prometheus.Registerer, st nv.Store) {
	ws, ok := st.(interface{ WriteStats() sqlite.WriteStats })
	if !ok {
		return
	}
	registerStatMetrics(reg, ws.WriteStats, []statMetric[sqlite.WriteStats]{
		{"numbergate_store_write_queue", "Writes waiting for the store's writer (backpressure).", prometheus.GaugeValue,
			func(s sqlite.WriteStats) float64 { return float64(s.Queued) }},
		{"numbergate_store_write_batches_total", "Group-commit transactions run by the store's writer.", prometheus.CounterValue,
			func(s sqlite.WriteStats) float64 { return float64(s.Batches) }},
		{"numbergate_store_writes_total", "Writes run by the store's writer (writes per batch: this over batches).", prometheus.CounterValue,
			func(s sqlite.WriteStats) float64 { return float64(s.Ops) }},
		{"numbergate_store_writes_failed_total", "Writes that returned an error (lost single-use races included).", prometheus.CounterValue,
			func(s sqlite.WriteStats) float64 { return float64(s.Failed) }},
		{"numbergate_store_write_batches_aborted_total", "Group-commit transactions lost as a whole (commit or I/O failure).", prometheus.CounterValue,
			func(s sqlite.WriteStats) float64 { return float64(s.Aborted) }},
		{"numbergate_store_write_batches_rerun_total", "Group-commit transactions run a second time, with a savepoint per write, because a write failed on the first run after it may have written (a write refused having changed nothing, such as a replayed token, causes none).", prometheus.CounterValue,
			func(s sqlite.WriteStats) float64 { return float64(s.Reruns) }},
		{"numbergate_store_writes_cancelled_total", "Writes whose caller gave up while they waited in the queue.", prometheus.CounterValue,
			func(s sqlite.WriteStats) float64 { return float64(s.Cancelled) }},
		{"numbergate_store_commit_seconds_total", "Time spent committing (the durable sync) by the store's writer.", prometheus.CounterValue,
			func(s sqlite.WriteStats) float64 { return s.SyncSeconds }},
	})
}

// registerSessionIndexMetrics exports the state of the embedded store's
// in-memory session index: whether identity lookups are served from memory
// (0 while it is built, at start or after another process wrote to the
// database file; lookups then read SQLite), and how often it was dropped.
func registerSessionIndexMetrics(reg prometheus.Registerer, st nv.Store) {
	si, ok := st.(interface {
		SessionIndexStats() sqlite.SessionIndexStats
	})
	if !ok {
		return
	}
	registerStatMetrics(reg, si.SessionIndexStats, []statMetric[sqlite.SessionIndexStats]{
		{"numbergate_store_session_index_ready", "1 when identity lookups are served from the in-memory session index, 0 while it is (re)built and lookups read SQLite.", prometheus.GaugeValue,
			func(s sqlite.SessionIndexStats) float64 {
				if s.Ready {
					return 1
				}
				return 0
			}},
		{"numbergate_store_session_index_sessions", "Network sessions held by the in-memory session index (0 when not ready).", prometheus.GaugeValue,
			func(s sqlite.SessionIndexStats) float64 { return float64(s.Sessions) }},
		{"numbergate_store_session_index_builds_total", "In-memory session indexes built from the database and put in use.", prometheus.CounterValue,
			func(s sqlite.SessionIndexStats) float64 { return float64(s.Builds) }},
		{"numbergate_store_session_index_drops_total", "In-memory session indexes dropped (another process wrote to the database file, or a self-check failed).", prometheus.CounterValue,
			func(s sqlite.SessionIndexStats) float64 { return float64(s.Drops) }},
	})
}

// registerQueueDepth exports a feed's queue of received work waiting for
// its store workers.
func registerQueueDepth(reg prometheus.Registerer, name, help string, depth func() int) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(depth()) }))
}
