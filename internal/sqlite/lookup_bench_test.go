package sqlite_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"math/rand/v2"

	"github.com/numbergate/numbergate/internal/sqlite"
)

func sessionAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

// BenchmarkSessionFor1M is the identity lookup (SessionFor, the query a
// RADIUS-identified /authorize makes) with 1,000,000 sessions in the
// table, from 1 and 16 concurrent callers, reporting p50 and p99, served
// by the in-memory session index (it waits until the index is built and
// logs how long that took). heap-MB is the Go heap in use after a GC with
// the index loaded, index-MB what it grew by from before Open. The filled
// database is kept in $TMPDIR/numbergate-bench-sessions-1m for the next
// run (delete it to start again).
//
//	go test -run '^$' -bench SessionFor1M -benchtime 20000x ./internal/sqlite
func BenchmarkSessionFor1M(b *testing.B) {
	const n = 1_000_000
	ctx := context.Background()
	dir := filepath.Join(os.TempDir(), "numbergate-bench-sessions-1m")
	at := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	_, statErr := os.Stat(filepath.Join(dir, "filled"))
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	t0 := time.Now()
	s, err := sqlite.Open(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if statErr != nil {
		t0 := time.Now()
		if err := sqlite.FillSessions(ctx, s, n, at, sessionAddr); err != nil {
			b.Fatal(err)
		}
		b.Logf("inserted %d sessions in %s", n, time.Since(t0).Round(time.Millisecond))
		os.WriteFile(filepath.Join(dir, "filled"), nil, 0o600)
	}
	if fi, err := os.Stat(filepath.Join(dir, sqlite.FileName)); err == nil {
		b.Logf("database file: %d MB", fi.Size()>>20)
	}
	if err := sqlite.WaitSessionIndex(ctx, s); err != nil {
		b.Fatal(err)
	}
	st := s.SessionIndexStats()
	b.Logf("session index: %d sessions, in use %s after Open (its build took %s)",
		st.Sessions, time.Since(t0).Round(time.Millisecond), st.LastBuild.Round(time.Millisecond))
	var loaded runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&loaded)
	b.Logf("Go heap after GC: %d MB before Open, %d MB with the index (%d MB in use, %d MB from the OS)",
		before.HeapAlloc>>20, loaded.HeapAlloc>>20, loaded.HeapInuse>>20, loaded.HeapSys>>20)
	for _, par := range []int{1, 16} {
		b.Run(fmt.Sprintf("callers=%d", par), func(b *testing.B) {
			var (
				mu   sync.Mutex
				lats []time.Duration
			)
			b.SetParallelism(max(par/runtime.GOMAXPROCS(0), 1))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				r := rand.New(rand.NewPCG(rand.Uint64(), 0))
				var mine []time.Duration
				for pb.Next() {
					i := r.IntN(n)
					t := time.Now()
					got, err := s.SessionFor(ctx, sessionAddr(i), at)
					mine = append(mine, time.Since(t))
					if err != nil || got.SessionID != fmt.Sprint("s", i) {
						b.Errorf("SessionFor(%v) = %q, %v; want s%d", sessionAddr(i), got.SessionID, err, i)
						return
					}
				}
				mu.Lock()
				lats = append(lats, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			slices.Sort(lats)
			if len(lats) > 0 {
				b.ReportMetric(float64(lats[len(lats)/2].Nanoseconds())/1e3, "p50-µs")
				b.ReportMetric(float64(lats[len(lats)*99/100].Nanoseconds())/1e3, "p99-µs")
			}
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapInuse>>20), "heap-MB")
			b.ReportMetric(float64((int64(ms.HeapAlloc)-int64(before.HeapAlloc))>>20), "index-MB")
		})
	}
}
