package sqlite

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	return openDir(t, t.TempDir())
}

// openDir opens a Store on dir, closed when the test ends: two on one dir
// are two processes sharing the database file.
func openDir(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// holdWriter blocks the writer inside a batch of its own until release is
// called, so that the writes issued meanwhile queue up and share the next
// batch.
func holdWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	started, rel := make(chan struct{}), make(chan struct{})
	var once sync.Once // re-runnable: an op may run twice (writer.go)
	done := make(chan error, 1)
	go func() {
		done <- s.write(context.Background(), func(*wtx) error {
			once.Do(func() { close(started) })
			<-rel
			return nil
		})
	}()
	<-started
	return func() {
		close(rel)
		if err := <-done; err != nil {
			t.Errorf("holding op: %v", err)
		}
	}
}

// waitQueued waits until n ops wait for the writer.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // generous: a loaded machine is slow
	for s.WriteStats().Queued < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d ops queued after a minute, want %d", s.WriteStats().Queued, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// inOneBatch runs every call concurrently so that they all land in one
// group-commit batch (checked), and returns their errors in order.
func inOneBatch(t *testing.T, s *Store, calls ...func(context.Context) error) []error {
	t.Helper()
	errs, _ := inOneBatchStats(t, s, calls...)
	return errs
}

// inOneBatchStats is inOneBatch, also returning the change in the
// writer's counters.
func inOneBatchStats(t *testing.T, s *Store, calls ...func(context.Context) error) ([]error, WriteStats) {
	t.Helper()
	release := holdWriter(t, s)
	before := s.WriteStats()
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Go(func() { errs[i] = call(t.Context()) })
	}
	waitQueued(t, s, len(calls))
	release()
	wg.Wait()
	after := s.WriteStats()
	// The holding batch was counted when it began; then one batch for all.
	if got := after.Batches - before.Batches; got != 1 {
		t.Errorf("the calls ran in %d batches, want 1", got)
	}
	if got := after.Ops - before.Ops; got != uint64(len(calls)) {
		t.Errorf("%d ops ran, want %d", got, len(calls))
	}
	// A batch with no failure is not run again; one with a failure at
	// most once (none when every failure changed nothing, noEffect).
	failed := slices.ContainsFunc(errs, func(err error) bool { return err != nil })
	d := statsSince(before, after)
	if !failed && d.Reruns != 0 || d.Reruns > 1 {
		t.Errorf("the batch was re-run %d times (a failure: %v)", d.Reruns, failed)
	}
	for i, err := range errs {
		var ne *noEffectError
		if errors.As(err, &ne) {
			t.Errorf("call %d = %v, carrying the writer's noEffect mark to its caller", i, err)
		}
	}
	return errs, d
}

// statsSince is the change in the writer's counters from before to after
// (Queued, Cancelled and SyncSeconds left out).
func statsSince(before, after WriteStats) WriteStats {
	return WriteStats{
		Batches: after.Batches - before.Batches, Ops: after.Ops - before.Ops,
		Failed: after.Failed - before.Failed, Aborted: after.Aborted - before.Aborted,
		Reruns: after.Reruns - before.Reruns,
	}
}

// execThen is an op that runs query and, once it has written, ends as end
// does (an error or a panic): a failure the writer must undo.
func execThen(s *Store, end func() error, query string, args ...any) func(context.Context) error {
	return func(ctx context.Context) error {
		return s.write(ctx, func(tx *wtx) error {
			if _, err := tx.exec(query, args...); err != nil {
				return err
			}
			return end()
		})
	}
}

// wroteThenFails is an op that inserts a jti (issuer "wrote", jti id) and
// then fails with ErrAlreadyExists, unmarked: its batch must be rolled back
// and re-run for its insert to be undone.
func wroteThenFails(s *Store, id string) func(context.Context) error {
	return execThen(s, func() error { return fmt.Errorf("after a write: %w", nv.ErrAlreadyExists) },
		"INSERT INTO jtis (issuer, jti, expires_at) VALUES ('wrote', ?, 0)", id)
}

// notWritten checks that a failed op's insert of the jti (issuer, id) was
// undone.
func notWritten(t *testing.T, s *Store, issuer, id string) {
	t.Helper()
	if err := s.ConsumeJTI(t.Context(), issuer, id, time.Time{}, time.Now()); err != nil {
		t.Errorf("the insert of a failed op (%s %s) was kept: ConsumeJTI = %v", issuer, id, err)
	}
}

// outcome checks that errs[i] matches want[i] (nil for success).
func outcome(t *testing.T, what string, errs []error, want []error) {
	t.Helper()
	for i := range errs {
		if want[i] == nil && errs[i] != nil || want[i] != nil && !errors.Is(errs[i], want[i]) {
			t.Errorf("%s: call %d = %v, want %v", what, i, errs[i], want[i])
		}
	}
}

func liveToken(hash string) nv.AccessToken {
	now := time.Now()
	return nv.AccessToken{Hash: hash, ClientID: "app", MSISDN: "+34600000001", Scopes: []string{nv.ScopeVerify},
		AuthMethod: nv.AuthNetwork, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
}

// TestBatchTokenWinnersAndLosers: one batch consumes the same token from
// several callers (one wins, the rest get ErrConsumed), another token once
// (wins), an unknown one (ErrNotFound) and saves a new one: each outcome is
// its own, and every winner is durable.
func TestBatchTokenWinnersAndLosers(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	for _, h := range []string{"t-race", "t-solo"} {
		if err := s.SaveToken(ctx, liveToken(h)); err != nil {
			t.Fatal(err)
		}
	}
	consume := func(h string) func(context.Context) error {
		return func(ctx context.Context) error { _, err := s.ConsumeToken(ctx, h, time.Now()); return err }
	}
	const racers = 8
	var calls []func(context.Context) error
	for range racers {
		calls = append(calls, consume("t-race"))
	}
	calls = append(calls, consume("t-solo"), consume("t-unknown"),
		func(ctx context.Context) error { return s.SaveToken(ctx, liveToken("t-new")) },
		func(ctx context.Context) error { return s.SaveToken(ctx, liveToken("t-solo")) }, // taken
	)
	errs, d := inOneBatchStats(t, s, calls...)
	if d.Reruns != 0 {
		t.Errorf("re-runs %d, want 0: every loser failed having changed nothing", d.Reruns)
	}
	wins := 0
	for _, err := range errs[:racers] {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, nv.ErrConsumed):
			t.Errorf("losing ConsumeToken = %v, want ErrConsumed", err)
		}
	}
	if wins != 1 {
		t.Errorf("%d of %d ConsumeToken of one token won in one batch, want 1", wins, racers)
	}
	outcome(t, "batch", errs[racers:], []error{nil, nv.ErrNotFound, nil, nv.ErrAlreadyExists})

	for _, h := range []string{"t-race", "t-solo"} {
		if _, err := s.ConsumeToken(ctx, h, time.Now()); !errors.Is(err, nv.ErrConsumed) {
			t.Errorf("ConsumeToken(%s) after the batch = %v, want ErrConsumed", h, err)
		}
	}
	if _, err := s.ConsumeToken(ctx, "t-new", time.Now()); err != nil {
		t.Errorf("token saved in the batch: %v", err)
	}
}

// TestBatchJTIWinnersAndLosers: the same jti from several callers in one
// batch: one wins; other jtis in the batch are unaffected.
func TestBatchJTIWinnersAndLosers(t *testing.T) {
	s := openTest(t)
	live := time.Now().Add(time.Hour)
	jti := func(id string) func(context.Context) error {
		return func(ctx context.Context) error { return s.ConsumeJTI(ctx, "iss", id, live, time.Now()) }
	}
	errs, d := inOneBatchStats(t, s, jti("j-race"), jti("j-a"), jti("j-race"), jti("j-b"), jti("j-race"), jti("j-a"))
	if d.Reruns != 0 {
		t.Errorf("re-runs %d, want 0: a replayed jti changes nothing", d.Reruns)
	}
	wins := 0
	for _, i := range []int{0, 2, 4} {
		if errs[i] == nil {
			wins++
		} else if !errors.Is(errs[i], nv.ErrConsumed) {
			t.Errorf("losing ConsumeJTI = %v, want ErrConsumed", errs[i])
		}
	}
	if wins != 1 {
		t.Errorf("%d of 3 ConsumeJTI of one jti won, want 1", wins)
	}
	// Arrival order decides between the two j-a calls, but exactly one wins.
	if (errs[1] == nil) == (errs[5] == nil) {
		t.Errorf("j-a twice: %v and %v, want exactly one winner", errs[1], errs[5])
	}
	outcome(t, "j-b", errs[3:4], []error{nil})
	for _, id := range []string{"j-race", "j-a", "j-b"} {
		if err := s.ConsumeJTI(t.Context(), "iss", id, live, time.Now()); !errors.Is(err, nv.ErrConsumed) {
			t.Errorf("ConsumeJTI(%s) after the batch = %v, want ErrConsumed", id, err)
		}
	}
}

// TestBatchCodeWinnersAndLosers: the same code redeemed by several callers
// in one batch (one wins), a revoked grant's code (ErrNotFound), another
// code (wins), and a grant created with a code already taken
// (ErrAlreadyExists) next to one created fine.
func TestBatchCodeWinnersAndLosers(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	for _, g := range []nv.Grant{
		{ID: "g-race", AuthCode: "c-race", ExpiresAt: exp},
		{ID: "g-solo", AuthCode: "c-solo", ExpiresAt: exp},
		{ID: "g-revoked", AuthCode: "c-revoked", ExpiresAt: exp},
	} {
		if err := s.CreateGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeGrant(ctx, "g-revoked"); err != nil {
		t.Fatal(err)
	}
	redeem := func(id string) func(context.Context) error {
		return func(ctx context.Context) error { return s.RedeemGrant(ctx, id, []byte("by "+id), time.Now()) }
	}
	errs, d := inOneBatchStats(t, s,
		redeem("g-race"), redeem("g-race"), redeem("g-race"), redeem("g-race"),
		redeem("g-solo"), redeem("g-revoked"),
		func(ctx context.Context) error {
			return s.CreateGrant(ctx, nv.Grant{ID: "g-dup", AuthCode: "c-race", ExpiresAt: exp})
		},
		func(ctx context.Context) error {
			return s.CreateGrant(ctx, nv.Grant{ID: "g-new", AuthCode: "c-new", ExpiresAt: exp})
		},
	)
	if d.Reruns != 0 {
		t.Errorf("re-runs %d, want 0: a lost or refused redemption changes nothing", d.Reruns)
	}
	wins := 0
	for _, err := range errs[:4] {
		if err == nil {
			wins++
		} else if !errors.Is(err, nv.ErrConsumed) {
			t.Errorf("losing RedeemGrant = %v, want ErrConsumed", err)
		}
	}
	if wins != 1 {
		t.Errorf("%d of 4 RedeemGrant of one code won, want 1", wins)
	}
	outcome(t, "batch", errs[4:], []error{nil, nv.ErrNotFound, nv.ErrAlreadyExists, nil})
	for _, id := range []string{"g-race", "g-solo"} {
		g, err := s.Grant(ctx, id)
		if err != nil || !g.CodeConsumed || string(g.Data) != "by "+id {
			t.Errorf("Grant(%s) after the batch = %+v, %v; want consumed with its data", id, g, err)
		}
	}
	if _, err := s.Grant(ctx, "g-dup"); !errors.Is(err, nv.ErrNotFound) {
		t.Errorf("refused grant visible after the batch: %v", err)
	}
	if _, err := s.GrantByAuthCode(ctx, "c-new"); err != nil {
		t.Errorf("grant created in the batch: %v", err)
	}
}

// TestBatchMultiStatementFailureAlone: an op of several statements that
// fails half-way (a static map naming a prefix twice, after deleting the old
// map) leaves nothing behind, while its batch-mates commit.
func TestBatchMultiStatementFailureAlone(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	old := []nv.StaticRoute{{Prefix: netip.MustParsePrefix("10.0.0.1/32"), MSISDN: "+34600000001"}}
	if err := s.ReplaceStaticRoutes(ctx, old); err != nil {
		t.Fatal(err)
	}
	dup := []nv.StaticRoute{
		{Prefix: netip.MustParsePrefix("10.0.0.2/32"), MSISDN: "+34600000002"},
		{Prefix: netip.MustParsePrefix("10.0.0.2/32"), MSISDN: "+34600000003"},
	}
	now := time.Now()
	errs := inOneBatch(t, s,
		func(ctx context.Context) error { return s.SaveToken(ctx, liveToken("before")) },
		func(ctx context.Context) error { return s.ReplaceStaticRoutes(ctx, dup) },
		func(ctx context.Context) error {
			return s.StartSession(ctx, nv.NetworkSession{Prefix: netip.MustParsePrefix("10.9.0.1/32"),
				MSISDN: "+34600000009", SessionID: "s", NAS: "gw", StartedAt: now, UpdatedAt: now})
		},
		func(ctx context.Context) error {
			return s.write(ctx, func(*wtx) error { panic("a bug in one op") })
		},
		func(ctx context.Context) error { return s.SaveToken(ctx, liveToken("after")) },
	)
	outcome(t, "batch", []error{errs[0], errs[1], errs[2], errs[4]}, []error{nil, nv.ErrAlreadyExists, nil, nil})
	if errs[3] == nil {
		t.Error("panicking op reported success")
	}
	got, err := s.StaticRoutes(ctx)
	if err != nil || len(got) != 1 || got[0] != old[0] {
		t.Errorf("static map after its refused replace = %v, %v; want the old one", got, err)
	}
	for _, h := range []string{"before", "after"} {
		if _, err := s.Token(ctx, h); err != nil {
			t.Errorf("token %s saved next to the failure: %v", h, err)
		}
	}
	if _, err := s.SessionFor(ctx, netip.MustParseAddr("10.9.0.1"), time.Time{}); err != nil {
		t.Errorf("session started next to the failure: %v", err)
	}
}

// TestCancelWhileQueued: a caller that gives up while its op waits gets its
// context's error, the op never runs, and the batch it would have joined
// commits normally.
func TestCancelWhileQueued(t *testing.T) {
	s := openTest(t)
	release := holdWriter(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	cancelled := make(chan error, 1)
	go func() { cancelled <- s.SaveToken(ctx, liveToken("cancelled")) }()
	kept := make(chan error, 1)
	go func() { kept <- s.SaveToken(t.Context(), liveToken("kept")) }()
	waitQueued(t, s, 2)
	cancel()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled SaveToken = %v, want context.Canceled", err)
	}
	release()
	if err := <-kept; err != nil {
		t.Errorf("SaveToken queued beside the cancelled one: %v", err)
	}
	if _, err := s.Token(t.Context(), "cancelled"); !errors.Is(err, nv.ErrNotFound) {
		t.Errorf("the cancelled write ran: Token = %v, want ErrNotFound", err)
	}
	if _, err := s.Token(t.Context(), "kept"); err != nil {
		t.Errorf("Token(kept) = %v", err)
	}
	if st := s.WriteStats(); st.Cancelled != 1 {
		t.Errorf("WriteStats.Cancelled = %d, want 1", st.Cancelled)
	}
}

// TestCancelWhileRunning: a caller that gives up once its op is in a
// running batch is answered with the batch's outcome, never a context
// error for a write that was in fact committed.
func TestCancelWhileRunning(t *testing.T) {
	s := openTest(t)
	ctx, cancel := context.WithCancel(t.Context())
	inside := make(chan struct{})
	var once sync.Once
	res := make(chan error, 1)
	go func() {
		res <- s.write(ctx, func(tx *wtx) error {
			once.Do(func() { close(inside) })
			time.Sleep(20 * time.Millisecond) // the caller cancels meanwhile
			_, err := tx.exec("INSERT INTO jtis (issuer, jti, expires_at) VALUES ('iss', 'running', 0)")
			return err
		})
	}()
	<-inside
	cancel()
	if err := <-res; err != nil {
		t.Errorf("write cancelled while running = %v, want its committed outcome (nil)", err)
	}
	if err := s.ConsumeJTI(t.Context(), "iss", "running", time.Time{}, time.Now()); !errors.Is(err, nv.ErrConsumed) {
		t.Errorf("the running write was not committed: ConsumeJTI = %v", err)
	}
}

// TestWriteAfterClose: writes after Close fail; writes queued before it
// are committed.
func TestWriteAfterClose(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	release := holdWriter(t, s)
	errs := make(chan error, 10)
	for i := range 10 {
		go func() { errs <- s.SaveToken(context.Background(), liveToken(fmt.Sprint("q", i))) }()
	}
	waitQueued(t, s, 10)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	release()
	for range 10 {
		if err := <-errs; err != nil {
			t.Errorf("write queued before Close: %v", err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := s.SaveToken(context.Background(), liveToken("late")); !errors.Is(err, nv.ErrUnavailable) {
		t.Errorf("SaveToken after Close = %v, want ErrUnavailable", err)
	}
	s, err = Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 10 {
		if _, err := s.Token(t.Context(), fmt.Sprint("q", i)); err != nil {
			t.Errorf("token q%d after reopen: %v", i, err)
		}
	}
}

// TestBatchDiskFull: an op that fills the database (max_page_count stands
// in for a full disk) fails; the batch either commits its other ops or none
// of them, never part of an op, and the database stays sound.
func TestBatchDiskFull(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	if err := s.write(ctx, func(tx *wtx) error {
		var n int
		return tx.queryRow("PRAGMA max_page_count = 300").Scan(&n)
	}); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 4<<20)
	errs := inOneBatch(t, s,
		func(ctx context.Context) error { return s.SaveToken(ctx, liveToken("a")) },
		func(ctx context.Context) error {
			return s.SaveAuthSession(ctx, nv.AuthSession{ID: "big", Data: big, ExpiresAt: time.Now().Add(time.Hour)})
		},
		func(ctx context.Context) error { return s.SaveToken(ctx, liveToken("c")) },
	)
	if errs[1] == nil {
		t.Fatal("a write larger than the database may grow succeeded")
	}
	if _, err := s.AuthSession(ctx, "big", time.Now()); !errors.Is(err, nv.ErrNotFound) {
		t.Errorf("failed write visible: %v", err)
	}
	for i, h := range map[int]string{0: "a", 2: "c"} {
		_, err := s.Token(ctx, h)
		if (errs[i] == nil) != (err == nil) {
			t.Errorf("token %s: write answered %v, stored: %v", h, errs[i], err)
		}
	}
	if err := s.SaveToken(ctx, liveToken("later")); err != nil {
		t.Errorf("write after the full batch: %v", err)
	}
	var check string
	if err := s.r.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("quick_check = %q, %v", check, err)
	}
}

// inOrder runs the calls as one batch, queued in the order given (each
// waits until the one before it is queued), and returns their errors and
// the change in the writer's counters.
func inOrder(t *testing.T, s *Store, calls ...func(context.Context) error) ([]error, WriteStats) {
	t.Helper()
	release := holdWriter(t, s)
	before := s.WriteStats()
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Go(func() { errs[i] = call(t.Context()) })
		waitQueued(t, s, i+1)
	}
	release()
	wg.Wait()
	after := s.WriteStats()
	d := statsSince(before, after)
	if d.Batches != 1 || d.Ops != uint64(len(calls)) {
		t.Errorf("the calls ran as %d ops in %d batches, want %d in 1", d.Ops, d.Batches, len(calls))
	}
	return errs, d
}

// countingOp is a write that counts its runs and inserts a jti with a
// plain INSERT, so that a run which found the row of an earlier run of the
// same batch (leftover state) fails on the primary key. seen records, per
// run, how many jtis with its issuer the run found before inserting.
type countingOp struct {
	s    *Store
	id   string
	runs atomic.Int32
	mu   sync.Mutex
	seen []int
}

func (c *countingOp) call(ctx context.Context) error {
	return c.s.write(ctx, func(tx *wtx) error {
		c.runs.Add(1) // test instrumentation: counting the runs is the point
		var n int
		if err := tx.queryRow("SELECT count(*) FROM jtis WHERE issuer = 'count'").Scan(&n); err != nil {
			return err
		}
		c.mu.Lock()
		c.seen = append(c.seen, n)
		c.mu.Unlock()
		_, err := tx.exec("INSERT INTO jtis (issuer, jti, expires_at) VALUES ('count', ?, 0)", c.id)
		return err
	})
}

// TestBatchAllSucceedRunOnce: a batch whose ops all succeed runs each op
// once, with no re-run.
func TestBatchAllSucceedRunOnce(t *testing.T) {
	s := openTest(t)
	ops := []*countingOp{{s: s, id: "a"}, {s: s, id: "b"}, {s: s, id: "c"}}
	var calls []func(context.Context) error
	for _, o := range ops {
		calls = append(calls, o.call)
	}
	errs, d := inOrder(t, s, calls...)
	outcome(t, "batch", errs, []error{nil, nil, nil})
	for _, o := range ops {
		if n := o.runs.Load(); n != 1 {
			t.Errorf("op %s ran %d times, want 1", o.id, n)
		}
	}
	if d.Reruns != 0 || d.Failed != 0 {
		t.Errorf("re-runs %d, failed %d; want 0 and 0", d.Reruns, d.Failed)
	}
}

// issue is a TokenIssue of token hash for grant, consuming jti (none if "").
func issue(grant, hash, jti string) nv.TokenIssue {
	now := time.Now()
	tok := liveToken(hash)
	tok.GrantID = grant
	ti := nv.TokenIssue{GrantData: []byte("by " + hash), Token: tok, Now: now,
		Usage: nv.UsageRecord{At: now, ClientID: "app", Event: "token_issued", Operation: "token", Result: "OK"}}
	if jti != "" {
		ti.JTI = nv.JTI{Issuer: "app", ID: jti, ExpiresAt: now.Add(time.Hour)}
	}
	return ti
}

// TestBatchNoEffectNoRerun: a batch of spent-token replays, a replayed
// jti, lost redemptions and refused saves (each failing before it changed
// anything) next to winners is run once, with no rollback: every loser
// gets its error, every winner commits, and each op ran once.
func TestBatchNoEffectNoRerun(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	start := time.Now()
	for _, h := range []string{"spent", "win"} {
		if err := s.SaveToken(ctx, liveToken(h)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ConsumeToken(ctx, "spent", time.Now()); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	for _, id := range []string{"g-used", "g-win", "g-jti"} {
		if err := s.CreateGrant(ctx, nv.Grant{ID: id, AuthCode: "c-" + id, ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RedeemGrant(ctx, "g-used", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.ConsumeJTI(ctx, "app", "replayed", exp, time.Now()); err != nil {
		t.Fatal(err)
	}
	consume := func(h string) func(context.Context) error {
		return func(ctx context.Context) error { _, err := s.ConsumeToken(ctx, h, time.Now()); return err }
	}
	record := func(tok nv.AccessToken, err error) (nv.UsageRecord, bool) {
		return nv.UsageRecord{At: time.Now(), ClientID: tok.ClientID, Event: "api_call", Operation: "verify", Result: "OK"}, true
	}
	first, last := &countingOp{s: s, id: "first"}, &countingOp{s: s, id: "last"}
	errs, d := inOrder(t, s,
		first.call,
		consume("spent"), consume("spent"), consume("spent"),
		func(ctx context.Context) error {
			_, err := s.ConsumeTokenFor(ctx, "spent", time.Now(), record)
			return err
		},
		func(ctx context.Context) error {
			_, err := s.ConsumeTokenFor(ctx, "win", time.Now(), record)
			return err
		},
		consume("unknown"),
		func(ctx context.Context) error { return s.IssueToken(ctx, issue("g-jti", "i-replay", "replayed")) },
		func(ctx context.Context) error { return s.IssueToken(ctx, issue("g-used", "i-lost", "")) },
		func(ctx context.Context) error { return s.RedeemGrant(ctx, "g-used", nil, time.Now()) },
		func(ctx context.Context) error { return s.SaveToken(ctx, liveToken("win")) },
		func(ctx context.Context) error { return s.ConsumeJTI(ctx, "app", "replayed", exp, time.Now()) },
		func(ctx context.Context) error { return s.IssueToken(ctx, issue("g-win", "i-win", "fresh")) },
		last.call,
	)
	outcome(t, "batch", errs, []error{nil,
		nv.ErrConsumed, nv.ErrConsumed, nv.ErrConsumed, nv.ErrConsumed, nil, nv.ErrNotFound,
		nv.ErrJTIReplayed, nv.ErrConsumed, nv.ErrConsumed, nv.ErrAlreadyExists, nv.ErrConsumed,
		nil, nil})
	if d.Reruns != 0 || d.Failed != 10 || d.Aborted != 0 {
		t.Errorf("re-runs %d, failed %d, aborted %d; want 0, 10, 0", d.Reruns, d.Failed, d.Aborted)
	}
	for _, o := range []*countingOp{first, last} {
		if n := o.runs.Load(); n != 1 {
			t.Errorf("op %s ran %d times, want 1", o.id, n)
		}
	}
	// The winners are durable.
	if _, err := s.ConsumeToken(ctx, "win", time.Now()); !errors.Is(err, nv.ErrConsumed) {
		t.Errorf("token consumed in the batch: ConsumeToken = %v, want ErrConsumed", err)
	}
	if _, err := s.Token(ctx, "i-win"); err != nil {
		t.Errorf("token issued in the batch: %v", err)
	}
	if g, err := s.Grant(ctx, "g-win"); err != nil || !g.CodeConsumed {
		t.Errorf("grant redeemed in the batch: %+v, %v", g, err)
	}
	if err := s.ConsumeJTI(ctx, "app", "fresh", exp, time.Now()); !errors.Is(err, nv.ErrConsumed) {
		t.Errorf("jti consumed in the batch: ConsumeJTI = %v, want ErrConsumed", err)
	}
	for _, id := range []string{"first", "last"} {
		if err := s.ConsumeJTI(ctx, "count", id, time.Time{}, time.Now()); !errors.Is(err, nv.ErrConsumed) {
			t.Errorf("jti %s written in the batch: ConsumeJTI = %v, want ErrConsumed", id, err)
		}
	}
	// The losers changed nothing.
	for _, h := range []string{"i-replay", "i-lost"} {
		if _, err := s.Token(ctx, h); !errors.Is(err, nv.ErrNotFound) {
			t.Errorf("token %s of a refused IssueToken is stored: %v", h, err)
		}
	}
	if g, err := s.Grant(ctx, "g-jti"); err != nil || g.CodeConsumed {
		t.Errorf("grant of the IssueToken refused at its jti: %+v, %v; want not redeemed", g, err)
	}
	recs, err := s.UsageRecords(ctx, start, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, r := range recs {
		events = append(events, r.Event)
	}
	slices.Sort(events)
	if !slices.Equal(events, []string{"api_call", "token_issued"}) {
		t.Errorf("usage records after the batch: %v, want one api_call (the consumed token) and one token_issued", events)
	}
}

// TestBatchWroteThenFailedReruns: IssueToken ops that fail after writing
// (their jti consumed, then a code already redeemed; their jti and grant,
// then a token hash taken) still force the re-run: each fails alone, none
// of its writes is kept, and its batch-mates commit, a replayed token among
// them failing as before.
func TestBatchWroteThenFailedReruns(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	for _, id := range []string{"g-used", "g-a", "g-b"} {
		if err := s.CreateGrant(ctx, nv.Grant{ID: id, AuthCode: "c-" + id, ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RedeemGrant(ctx, "g-used", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"spent", "taken"} {
		if err := s.SaveToken(ctx, liveToken(h)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ConsumeToken(ctx, "spent", time.Now()); err != nil {
		t.Fatal(err)
	}
	errs, d := inOrder(t, s,
		func(ctx context.Context) error { _, err := s.ConsumeToken(ctx, "spent", time.Now()); return err },
		func(ctx context.Context) error { return s.IssueToken(ctx, issue("g-a", "t-a", "j-a")) },
		func(ctx context.Context) error { return s.IssueToken(ctx, issue("g-used", "t-lost", "j-lost")) },
		func(ctx context.Context) error { return s.IssueToken(ctx, issue("g-b", "taken", "j-taken")) },
		func(ctx context.Context) error { return s.SaveToken(ctx, liveToken("after")) },
	)
	outcome(t, "batch", errs, []error{nv.ErrConsumed, nil, nv.ErrConsumed, nv.ErrAlreadyExists, nil})
	if d.Reruns != 1 || d.Failed != 3 || d.Aborted != 0 {
		t.Errorf("re-runs %d, failed %d, aborted %d; want 1, 3, 0", d.Reruns, d.Failed, d.Aborted)
	}
	for _, id := range []string{"j-lost", "j-taken"} {
		if err := s.ConsumeJTI(ctx, "app", id, exp, time.Now()); err != nil {
			t.Errorf("jti %s of a failed IssueToken was kept: ConsumeJTI = %v", id, err)
		}
	}
	if g, err := s.Grant(ctx, "g-b"); err != nil || g.CodeConsumed {
		t.Errorf("grant of the IssueToken refused at its token: %+v, %v; want not redeemed", g, err)
	}
	if err := s.ConsumeJTI(ctx, "app", "j-a", exp, time.Now()); !errors.Is(err, nv.ErrConsumed) {
		t.Errorf("jti of the winning IssueToken: ConsumeJTI = %v, want ErrConsumed", err)
	}
	for _, h := range []string{"t-a", "after"} {
		if _, err := s.Token(ctx, h); err != nil {
			t.Errorf("token %s saved next to the failures: %v", h, err)
		}
	}
}

// TestBatchFailureInTheMiddle: the fourth op of six fails after writing; the batch is
// run again with a savepoint per op, so the failing op fails alone and the
// others commit exactly once (a counter incremented before the failure is
// incremented once, not twice), and each op before the failure ran twice,
// the second time on the database as it was before the batch.
func TestBatchFailureInTheMiddle(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	day := time.Now()
	quota := func(client string) func(context.Context) error {
		return func(ctx context.Context) error {
			ok, err := s.TakeDailyQuota(ctx, client, day, 10)
			if err == nil && !ok {
				err = errors.New("quota refused")
			}
			return err
		}
	}
	counted := &countingOp{s: s, id: "x"}
	after := &countingOp{s: s, id: "y"}
	errs, d := inOrder(t, s,
		quota("before"),
		func(ctx context.Context) error { return s.SaveToken(ctx, liveToken("m-1")) },
		counted.call,
		wroteThenFails(s, "mid"),
		func(ctx context.Context) error { return s.SaveToken(ctx, liveToken("m-2")) },
		after.call,
	)
	outcome(t, "batch", errs, []error{nil, nil, nil, nv.ErrAlreadyExists, nil, nil})
	if d.Reruns != 1 || d.Failed != 1 || d.Aborted != 0 {
		t.Errorf("re-runs %d, failed %d, aborted %d; want 1, 1, 0", d.Reruns, d.Failed, d.Aborted)
	}
	if n := counted.runs.Load(); n != 2 {
		t.Errorf("the op before the failure ran %d times, want 2 (first try, then the re-run)", n)
	}
	if !slices.Equal(counted.seen, []int{0, 0}) {
		t.Errorf("the op before the failure saw %v jtis on its runs, want [0 0]: its re-run saw its first run's write", counted.seen)
	}
	if n := after.runs.Load(); n != 1 {
		t.Errorf("the op after the failure ran %d times, want 1 (only in the re-run)", n)
	}
	// The quota was counted once: one more call fits under a limit of 2,
	// then none.
	for i, want := range []bool{true, false} {
		if ok, err := s.TakeDailyQuota(ctx, "before", day, 2); err != nil || ok != want {
			t.Errorf("TakeDailyQuota #%d after the batch = %v, %v; want %v (the batch counted once)", i+2, ok, err, want)
		}
	}
	for _, h := range []string{"m-1", "m-2"} {
		if _, err := s.Token(ctx, h); err != nil {
			t.Errorf("token %s saved next to the failure: %v", h, err)
		}
	}
	notWritten(t, s, "wrote", "mid")
	for _, id := range []string{"x", "y"} {
		if err := s.ConsumeJTI(ctx, "count", id, time.Time{}, time.Now()); !errors.Is(err, nv.ErrConsumed) {
			t.Errorf("jti %s written next to the failure: ConsumeJTI = %v, want ErrConsumed", id, err)
		}
	}
}

// TestBatchRerunOutputs: ops that return values (Collect's count,
// ConsumeToken's token) and run twice because a later op of their batch
// failed report what their committed run did, not the sum of both runs or
// what the first run left behind.
func TestBatchRerunOutputs(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	past := time.Now().Add(-time.Hour)
	for _, id := range []string{"old-1", "old-2", "old-3"} {
		if err := s.ConsumeJTI(ctx, "iss", id, past, past.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveToken(ctx, liveToken("c-tok")); err != nil {
		t.Fatal(err)
	}
	var (
		collected int
		consumed  nv.AccessToken
	)
	errs, d := inOrder(t, s,
		func(ctx context.Context) (err error) { collected, err = s.Collect(ctx, time.Now()); return err },
		func(ctx context.Context) (err error) {
			consumed, err = s.ConsumeToken(ctx, "c-tok", time.Now())
			return err
		},
		wroteThenFails(s, "outputs"),
	)
	outcome(t, "batch", errs, []error{nil, nil, nv.ErrAlreadyExists})
	if d.Reruns != 1 {
		t.Errorf("re-runs %d, want 1", d.Reruns)
	}
	if collected != 3 {
		t.Errorf("Collect run twice in one batch = %d, want 3", collected)
	}
	if consumed.Hash != "c-tok" {
		t.Errorf("ConsumeToken run twice in one batch returned %+v, want the token", consumed)
	}
	if _, err := s.ConsumeToken(ctx, "c-tok", time.Now()); !errors.Is(err, nv.ErrConsumed) {
		t.Errorf("ConsumeToken after the batch = %v, want ErrConsumed", err)
	}
}

// TestBatchPanic: an op that panics fails alone, in the middle of a batch
// and in a batch of its own; the writer keeps serving.
func TestBatchPanic(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	panics := execThen(s, func() error { panic("a bug in one op") },
		"INSERT INTO jtis (issuer, jti, expires_at) VALUES ('panic', 'p', 0)")
	errs, d := inOrder(t, s,
		func(ctx context.Context) error { return s.SaveToken(ctx, liveToken("p-1")) },
		panics,
		func(ctx context.Context) error { return s.SaveToken(ctx, liveToken("p-2")) },
	)
	outcome(t, "batch", []error{errs[0], errs[2]}, []error{nil, nil})
	if errs[1] == nil || !strings.Contains(errs[1].Error(), "panic") {
		t.Errorf("panicking op = %v, want an error telling of the panic", errs[1])
	}
	if d.Reruns != 1 || d.Failed != 1 {
		t.Errorf("re-runs %d, failed %d; want 1 and 1", d.Reruns, d.Failed)
	}
	for _, h := range []string{"p-1", "p-2"} {
		if _, err := s.Token(ctx, h); err != nil {
			t.Errorf("token %s saved next to the panic: %v", h, err)
		}
	}
	if err := panics(ctx); err == nil {
		t.Error("panicking op alone reported success")
	}
	notWritten(t, s, "panic", "p")
	if err := s.SaveToken(ctx, liveToken("p-3")); err != nil {
		t.Errorf("write after the panics: %v", err)
	}
}

// TestBatchAloneFailsOnce: an op failing alone in its batch is rolled back
// and answered with its error; it is not run again.
func TestBatchAloneFailsOnce(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	var runs atomic.Int32
	before := s.WriteStats()
	err := s.write(ctx, func(tx *wtx) error {
		runs.Add(1)
		if _, err := tx.exec("INSERT INTO jtis (issuer, jti, expires_at) VALUES ('alone', 'a', 0)"); err != nil {
			return err
		}
		return nv.ErrConsumed
	})
	if !errors.Is(err, nv.ErrConsumed) {
		t.Errorf("failing op = %v, want its error", err)
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("failing op alone ran %d times, want 1", n)
	}
	after := s.WriteStats()
	if after.Reruns != before.Reruns || after.Failed != before.Failed+1 {
		t.Errorf("re-runs +%d, failed +%d; want +0 and +1", after.Reruns-before.Reruns, after.Failed-before.Failed)
	}
	notWritten(t, s, "alone", "a")
}

// TestBatchTransactionLost: an op whose failure took the transaction with
// it (as SQLite does after an I/O error or a full disk; here the op ends
// the transaction itself) loses the whole batch, on the first run (no
// savepoint) and on the re-run (its savepoint is gone): every op fails as
// nv.ErrUnavailable, nothing of the batch is stored, and the writer goes on.
func TestBatchTransactionLost(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	loses := execThen(s, func() error { return errors.New("the transaction is gone") }, "ROLLBACK")
	save := func(h string) func(context.Context) error {
		return func(ctx context.Context) error { return s.SaveToken(ctx, liveToken(h)) }
	}
	for _, c := range []struct {
		name   string
		calls  []func(context.Context) error
		reruns uint64
	}{
		{"first run", []func(context.Context) error{save("l-1"), loses, save("l-2")}, 0},
		{"re-run", []func(context.Context) error{save("l-3"), wroteThenFails(s, "lost"), loses, save("l-4")}, 1},
	} {
		errs, d := inOrder(t, s, c.calls...)
		for i, err := range errs {
			if !errors.Is(err, nv.ErrUnavailable) {
				t.Errorf("%s: call %d = %v, want nv.ErrUnavailable (batch lost)", c.name, i, err)
			}
		}
		if d.Aborted != 1 || d.Reruns != c.reruns || d.Failed != uint64(len(c.calls)) {
			t.Errorf("%s: aborted %d, re-runs %d, failed %d; want 1, %d, %d", c.name, d.Aborted, d.Reruns, d.Failed, c.reruns, len(c.calls))
		}
	}
	for _, h := range []string{"l-1", "l-2", "l-3", "l-4"} {
		if _, err := s.Token(ctx, h); !errors.Is(err, nv.ErrNotFound) {
			t.Errorf("token %s of a lost batch is stored: %v", h, err)
		}
	}
	if err := s.SaveToken(ctx, liveToken("after")); err != nil {
		t.Errorf("write after the lost batches: %v", err)
	}
}
