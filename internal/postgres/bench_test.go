package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/postgres"
	"github.com/numbergate/numbergate/internal/postgres/pgtest"
)

// fillSessions inserts n network sessions server side: n/2 IPv4 /32s in
// 10.0.0.0/8 upwards and n/2 IPv6 /64s in 2001:db8::/32, all updated at.
func fillSessions(tb testing.TB, dsn string, n int, at time.Time) {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `
INSERT INTO network_sessions (prefix, msisdn, session_id, nas, imsi, client, started_at, updated_at)
SELECT CASE WHEN i % 2 = 0 THEN set_masklen('10.0.0.0'::inet + (i / 2), 32)::cidr
	ELSE format('2001:db8:%s:%s::/64', to_hex((i / 2) >> 16), to_hex((i / 2) & 65535))::cidr END,
	'+346' || lpad(i::text, 8, '0'), 's' || i, 'pgw', '', 'gw-' || (i % 16), $2, $2
FROM generate_series(0, $1 - 1) AS i`, n, at)
	if err != nil {
		tb.Fatal(err)
	}
	_, err = conn.Exec(ctx, `INSERT INTO network_session_lengths VALUES (4, 32), (6, 64) ON CONFLICT DO NOTHING`)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "ANALYZE network_sessions"); err != nil {
		tb.Fatal(err)
	}
}

// sessionAddr is an address inside the i-th session of fillSessions.
func sessionAddr(i int) netip.Addr {
	if i%2 == 0 {
		v := uint32(10<<24) + uint32(i/2)
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	j := i / 2
	return netip.MustParseAddr(fmt.Sprintf("2001:db8:%x:%x::1234", j>>16, j&0xffff))
}

// BenchmarkSessionFor1M measures identity lookup (SessionFor: the most
// specific prefix containing an address: a primary-key probe per prefix
// length in use) with
// 1,000,000 sessions in the table, from 1 and from 16 concurrent callers;
// it reports the p99 latency too.
//
//	NUMBERGATE_TEST_POSTGRES_DSN=... go test -run '^$' -bench SessionFor1M -benchtime 20000x ./internal/postgres
func BenchmarkSessionFor1M(b *testing.B) {
	const n = 1_000_000
	dsn := pgtest.DSN(b)
	ctx := context.Background()
	s, err := postgres.Open(ctx, postgres.Options{DSN: dsn})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	at := time.Now().Truncate(time.Second)
	t0 := time.Now()
	fillSessions(b, dsn, n, at)
	b.Logf("inserted %d sessions (with their indexes) in %s", n, time.Since(t0).Round(time.Millisecond))
	if conn, err := pgx.Connect(ctx, dsn); err == nil {
		var table, total int64
		_ = conn.QueryRow(ctx, "SELECT pg_relation_size('network_sessions'), pg_total_relation_size('network_sessions')").Scan(&table, &total)
		b.Logf("network_sessions: %d MB of rows, %d MB with indexes", table>>20, total>>20)
		conn.Close(ctx)
	}

	for _, par := range []int{1, 16} {
		b.Run(fmt.Sprintf("callers=%d", par), func(b *testing.B) {
			var (
				mu   sync.Mutex
				lats []time.Duration
			)
			b.SetParallelism(par) // par × GOMAXPROCS goroutines
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
			slices.Sort(lats)
			if len(lats) > 0 {
				b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds()), "p99-µs")
				b.ReportMetric(float64(lats[len(lats)/2].Microseconds()), "p50-µs")
			}
		})
	}
}

// TestCollectBatches checks that Collect and ExpireSessions remove every
// expired row through small batches, and nothing live.
func TestCollectBatches(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	s, err := postgres.Open(ctx, postgres.Options{DSN: dsn, CollectBatch: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().Truncate(time.Second)
	for i := range 50 {
		exp := now.Add(-time.Minute)
		if i%10 == 0 {
			exp = now.Add(time.Minute)
		}
		if err := s.ConsumeJTI(ctx, "iss", fmt.Sprint("j", i), exp, now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.Collect(ctx, now)
	if err != nil || n != 45 {
		t.Errorf("Collect = %d, %v; want 45", n, err)
	}
	fillSessions(t, dsn, 40, now.Add(-2*time.Hour))
	if err := s.StartSession(ctx, nv.NetworkSession{Prefix: netip.MustParsePrefix("192.0.2.1/32"), MSISDN: "+34600000001", UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	n, err = s.ExpireSessions(ctx, now.Add(-time.Hour))
	if err != nil || n != 40 {
		t.Errorf("ExpireSessions = %d, %v; want 40", n, err)
	}
	if _, err := s.SessionFor(ctx, netip.MustParseAddr("192.0.2.1"), now); err != nil {
		t.Errorf("live session after ExpireSessions: %v", err)
	}
}
