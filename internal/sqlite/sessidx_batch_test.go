package sqlite

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

// TestSessionIndexMixedBatches: random session writes of every kind, many
// to the same prefixes, share batches with writes that fail: a replayed
// jti (which changed nothing: the batch goes on, on its one run) and, in
// about half the batches, an op that wrote before failing, so that the
// writer rolls the batch back and runs it again with a savepoint per op.
// After every batch, each lookup from memory answers what
// the SQL lookup answers, and the index holds exactly the table.
func TestSessionIndexMixedBatches(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	waitIndex(t, s)
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	if err := s.ConsumeJTI(ctx, "app", "used", now.Add(time.Hour), now); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(11, 13))
	prefixes := []string{"10.1.2.0/24", "10.1.2.3/32", "10.1.2.4/32", "10.1.0.0/16", "2001:db8:1:2::/64", "2001:db8:1:2::1/128"}
	addrs := []string{"10.1.2.3", "10.1.2.4", "10.1.2.9", "10.1.9.9", "2001:db8:1:2::1", "2001:db8:1:2::2"}
	clients := []string{"gw-a", "gw-b", ""}
	for round := range 60 {
		var calls []func(context.Context) error
		for range 4 + r.IntN(8) {
			ns := idxSession(prefixes[r.IntN(len(prefixes))], fmt.Sprintf("+3460000%04d", r.IntN(10000)),
				fmt.Sprint("s", r.IntN(3)), clients[r.IntN(len(clients))], r.IntN(100))
			switch k := r.IntN(10); {
			case k < 3:
				calls = append(calls, func(ctx context.Context) error { return s.StartSession(ctx, ns) })
			case k < 7:
				calls = append(calls, func(ctx context.Context) error {
					if err := s.UpsertSession(ctx, ns); !errors.Is(err, nv.ErrNotFound) {
						return err
					}
					return nil
				})
			case k < 9:
				calls = append(calls, func(ctx context.Context) error {
					_, err := s.StopSession(ctx, ns.Client, ns.Prefix, ns.SessionID)
					return err
				})
			default:
				calls = append(calls, func(ctx context.Context) error {
					_, err := s.PurgeClient(ctx, ns.Client, ns.UpdatedAt)
					return err
				})
			}
		}
		sessionOps := len(calls)
		for range 1 + r.IntN(2) {
			calls = append(calls, func(ctx context.Context) error {
				return s.ConsumeJTI(ctx, "app", "used", now.Add(time.Hour), now)
			})
		}
		rerun := r.IntN(2) == 0
		if rerun {
			calls = append(calls, wroteThenFails(s, fmt.Sprint("r", round)))
		}
		errs, d := inOneBatchStats(t, s, calls...)
		if want := map[bool]uint64{false: 0, true: 1}[rerun]; d.Reruns != want {
			t.Fatalf("round %d: re-runs %d, want %d", round, d.Reruns, want)
		}
		for i, err := range errs {
			if i >= sessionOps {
				if !errors.Is(err, nv.ErrConsumed) && !errors.Is(err, nv.ErrAlreadyExists) {
					t.Fatalf("round %d: a failing op: %v, want ErrConsumed or ErrAlreadyExists", round, err)
				}
			} else if err != nil {
				t.Fatalf("round %d call %d: %v", round, i, err)
			}
		}
		for _, a := range addrs {
			for _, nb := range []time.Time{{}, now.Add(50 * time.Second)} {
				got, gerr := s.SessionFor(ctx, netip.MustParseAddr(a), nb)
				want, werr := s.sessionForSQL(ctx, netip.MustParseAddr(a), nb)
				if got != want || (gerr == nil) != (werr == nil) {
					t.Fatalf("round %d: SessionFor(%s, %v) = %+v, %v; the table says %+v, %v", round, a, nb, got, gerr, want, werr)
				}
			}
		}
		sameAsTable(t, s, fmt.Sprintf("round %d", round))
	}
	if st := s.SessionIndexStats(); !st.Ready || st.Drops != 0 {
		t.Errorf("session index after own writes: %+v, want in use and never dropped", st)
	}
	if st := s.WriteStats(); st.Reruns == 0 || st.Reruns == st.Batches {
		t.Errorf("batches run again: %d of %d, want some but not all", st.Reruns, st.Batches)
	}
}
