package sqlite_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/benchcpu"
	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/sqlite"
)

// BenchmarkWritePath measures durable writes (synchronous=FULL) from 1 and
// 64 concurrent writers: a RADIUS Start (StartSession) and an issued token
// (SaveToken). One op is one acknowledged write.
func BenchmarkWritePath(b *testing.B) {
	now := time.Now()
	ops := []struct {
		name string
		op   func(s *sqlite.Store, i int64) error
	}{
		{"start_session", func(s *sqlite.Store, i int64) error {
			a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			return s.StartSession(context.Background(), nv.NetworkSession{
				Prefix: netip.PrefixFrom(a, 32), MSISDN: nv.PhoneNumber(fmt.Sprintf("+3460%07d", i%10_000_000)),
				SessionID: fmt.Sprint(i), NAS: "gw", StartedAt: now, UpdatedAt: now,
			})
		}},
		{"save_token", func(s *sqlite.Store, i int64) error {
			return s.SaveToken(context.Background(), nv.AccessToken{
				Hash: fmt.Sprintf("%064x", i), ClientID: "app", MSISDN: "+34600000001",
				Scopes: []string{nv.ScopeVerify}, AuthMethod: nv.AuthNetwork, IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute),
			})
		}},
	}
	for _, o := range ops {
		for _, writers := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/writers=%d", o.name, writers), func(b *testing.B) {
				s, err := sqlite.Open(context.Background(), b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				b.ReportAllocs()
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				cpu := benchcpu.Start(b)
				for range writers {
					wg.Go(func() {
						for {
							i := next.Add(1)
							if i > int64(b.N) {
								return
							}
							if err := o.op(s, i); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				cpu()
				st := s.WriteStats()
				if st.Batches > 0 {
					b.ReportMetric(float64(st.Ops)/float64(st.Batches), "ops/batch")
					b.ReportMetric(st.SyncSeconds*1e6/float64(st.Batches), "commit-µs/batch")
				}
			})
		}
	}
}
