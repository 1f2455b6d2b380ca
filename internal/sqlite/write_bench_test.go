package sqlite_test

import (
	"context"
	"errors"
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
// 64 concurrent writers: a RADIUS Start (StartSession), an issued token
// (SaveToken), and replay_mixed: every other op a replay of a spent token
// (ConsumeToken, refused), the others SaveToken, so that most batches mix
// refusals with winners. One op is one acknowledged (or refused) write.
func BenchmarkWritePath(b *testing.B) {
	now := time.Now()
	saveToken := func(s *sqlite.Store, i int64) error {
		return s.SaveToken(context.Background(), nv.AccessToken{
			Hash: fmt.Sprintf("%064x", i), ClientID: "app", MSISDN: "+34600000001",
			Scopes: []string{nv.ScopeVerify}, AuthMethod: nv.AuthNetwork, IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute),
		})
	}
	ops := []struct {
		name  string
		setup func(s *sqlite.Store) error
		op    func(s *sqlite.Store, i int64) error
	}{
		{"start_session", nil, func(s *sqlite.Store, i int64) error {
			a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			return s.StartSession(context.Background(), nv.NetworkSession{
				Prefix: netip.PrefixFrom(a, 32), MSISDN: nv.PhoneNumber(fmt.Sprintf("+3460%07d", i%10_000_000)),
				SessionID: fmt.Sprint(i), NAS: "gw", StartedAt: now, UpdatedAt: now,
			})
		}},
		{"save_token", nil, saveToken},
		{"replay_mixed", func(s *sqlite.Store) error {
			if err := saveToken(s, 0); err != nil {
				return err
			}
			_, err := s.ConsumeToken(context.Background(), fmt.Sprintf("%064x", 0), now)
			return err
		}, func(s *sqlite.Store, i int64) error {
			if i%2 == 0 {
				return saveToken(s, i)
			}
			if _, err := s.ConsumeToken(context.Background(), fmt.Sprintf("%064x", 0), now); !errors.Is(err, nv.ErrConsumed) {
				return fmt.Errorf("replayed token: %v, want ErrConsumed", err)
			}
			return nil
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
				if o.setup != nil {
					if err := o.setup(s); err != nil {
						b.Fatal(err)
					}
				}
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
					b.ReportMetric(float64(st.Reruns)/float64(st.Batches), "reruns/batch")
					b.ReportMetric(float64(st.Ops)/float64(st.Batches), "ops/batch")
					b.ReportMetric(st.SyncSeconds*1e6/float64(st.Batches), "commit-µs/batch")
				}
			})
		}
	}
}
