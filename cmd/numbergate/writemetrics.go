package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/sqlite"
)

// registerWritePathMetrics exports the embedded store's group-commit
// counters (a store without them, such as another backend, exports none):
// the write queue is the backpressure every writer sees.
func registerWritePathMetrics(reg prometheus.Registerer, st nv.Store) {
	ws, ok := st.(interface{ WriteStats() sqlite.WriteStats })
	if !ok {
		return
	}
	gauge := func(name, help string, f func(sqlite.WriteStats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(ws.WriteStats()) })
	}
	counter := func(name, help string, f func(sqlite.WriteStats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(ws.WriteStats()) })
	}
	reg.MustRegister(
		gauge("numbergate_store_write_queue", "Writes waiting for the store's writer (backpressure).",
			func(s sqlite.WriteStats) float64 { return float64(s.Queued) }),
		counter("numbergate_store_write_batches_total", "Group-commit transactions run by the store's writer.",
			func(s sqlite.WriteStats) float64 { return float64(s.Batches) }),
		counter("numbergate_store_writes_total", "Writes run by the store's writer (writes per batch: this over batches).",
			func(s sqlite.WriteStats) float64 { return float64(s.Ops) }),
		counter("numbergate_store_writes_failed_total", "Writes that returned an error (lost single-use races included).",
			func(s sqlite.WriteStats) float64 { return float64(s.Failed) }),
		counter("numbergate_store_write_batches_aborted_total", "Group-commit transactions lost as a whole (commit or I/O failure).",
			func(s sqlite.WriteStats) float64 { return float64(s.Aborted) }),
		counter("numbergate_store_write_batches_rerun_total", "Group-commit transactions run a second time, with a savepoint per write, because a write failed on the first run after it may have written (a write refused having changed nothing, such as a replayed token, causes none).",
			func(s sqlite.WriteStats) float64 { return float64(s.Reruns) }),
		counter("numbergate_store_writes_cancelled_total", "Writes whose caller gave up while they waited in the queue.",
			func(s sqlite.WriteStats) float64 { return float64(s.Cancelled) }),
		counter("numbergate_store_commit_seconds_total", "Time spent committing (the durable sync) by the store's writer.",
			func(s sqlite.WriteStats) float64 { return s.SyncSeconds }),
	)
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
	gauge := func(name, help string, f func(sqlite.SessionIndexStats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(si.SessionIndexStats()) })
	}
	counter := func(name, help string, f func(sqlite.SessionIndexStats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(si.SessionIndexStats()) })
	}
	reg.MustRegister(
		gauge("numbergate_store_session_index_ready", "1 when identity lookups are served from the in-memory session index, 0 while it is (re)built and lookups read SQLite.",
			func(s sqlite.SessionIndexStats) float64 {
				if s.Ready {
					return 1
				}
				return 0
			}),
		gauge("numbergate_store_session_index_sessions", "Network sessions held by the in-memory session index (0 when not ready).",
			func(s sqlite.SessionIndexStats) float64 { return float64(s.Sessions) }),
		counter("numbergate_store_session_index_builds_total", "In-memory session indexes built from the database and put in use.",
			func(s sqlite.SessionIndexStats) float64 { return float64(s.Builds) }),
		counter("numbergate_store_session_index_drops_total", "In-memory session indexes dropped (another process wrote to the database file, or a self-check failed).",
			func(s sqlite.SessionIndexStats) float64 { return float64(s.Drops) }),
	)
}

// registerQueueDepth exports a feed's queue of received work waiting for
// its store workers.
func registerQueueDepth(reg prometheus.Registerer, name, help string, depth func() int) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(depth()) }))
}
