package cgnat_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/cgnat"
	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/sqlite"
	"github.com/numbergate/numbergate/internal/testlog"
)

// slowStore is the SQLite store, except that an allocation for the
// private address slow waits until its context ends and fails with the
// context's error, as a store call stuck behind a slow disk does.
type slowStore struct {
	*sqlite.Store
	slow netip.Addr
}

func (s slowStore) AllocatePortBlock(ctx context.Context, b nv.PortBlock) error {
	if b.Private == s.slow {
		<-ctx.Done()
		return fmt.Errorf("slow store: %w", ctx.Err())
	}
	return s.Store.AllocatePortBlock(ctx, b)
}

// TestStoreTimeout: a store call that outlives StoreTimeout fails with an
// error wrapping context.DeadlineExceeded, from a file and from syslog; a
// syslog worker's next record, after that timeout, is stored.
func TestStoreTimeout(t *testing.T) {
	st := slowStore{Store: openStore(t), slow: netip.MustParseAddr("100.64.9.1")}
	const timeout = 50 * time.Millisecond
	slow := "2026-11-27T10:00:00Z ALLOC private=100.64.9.1 public=203.0.113.9 ports=1024-2047"
	fast := "2026-11-27T10:00:00Z ALLOC private=100.64.9.2 public=203.0.113.9 ports=2048-3071"

	g, err := cgnat.New(cgnat.Config{}, st, cgnat.Options{StoreTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	c, err := g.IngestReader(t.Context(), strings.NewReader(fast+"\n"+slow+"\n"+fast+"\n"), "log")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("IngestReader with a store call timing out = %v, want it to wrap context.DeadlineExceeded", err)
	}
	if c.Applied != 1 {
		t.Errorf("IngestReader applied %d before the timeout, want 1", c.Applied)
	}
	if _, err := g.Apply(t.Context(), cgnat.Record{Op: cgnat.Alloc, Private: st.slow,
		Public: netip.MustParseAddr("203.0.113.9"), FirstPort: 1024, LastPort: 2047, Time: t0}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Apply timing out = %v, want it to wrap context.DeadlineExceeded", err)
	}

	// Syslog: one worker, so that the record after the timeout is stored
	// by the worker whose context expired.
	var logs testlog.Buffer
	m := cgnat.NewMetrics(nil)
	g, err = cgnat.New(cgnat.Config{Senders: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}, st,
		cgnat.Options{StoreTimeout: timeout, Workers: 1, Metrics: m, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	pc, done := serve(t, ctx, g)
	conn := dial(t, "127.0.0.1", pc)
	defer conn.Close()
	for _, l := range []string{slow, fast} {
		if _, err := conn.Write([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	s := waitCounts(t, m, "two records", func(s map[string]uint64) bool {
		return s[cgnat.ResultStoreError]+s[cgnat.ResultAlloc] == 2
	})
	if s[cgnat.ResultStoreError] != 1 {
		t.Errorf("counters %v, want one store error and one allocation", s)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if l := logs.String(); !strings.Contains(l, "cgnat record not stored") || !strings.Contains(l, "deadline exceeded") {
		t.Errorf("log %q, want the record not stored because its store call timed out", l)
	}
	a, err := st.PrivateAddrFor(t.Context(), netip.MustParseAddrPort("203.0.113.9:2500"), t0.Add(time.Minute))
	if err != nil || a != netip.MustParseAddr("100.64.9.2") {
		t.Errorf("record after the timeout: %v, %v; want stored", a, err)
	}
}
