package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/loadgen"
	"github.com/numbergate/numbergate/internal/postgres/pgtest"
)

var crashRounds = flag.Int("crash.rounds", 0, "SIGKILL rounds of TestCrash (default 3, or $NUMBERGATE_CRASH_ROUNDS)")

// crashReadyBound is how long a restarted server may take to be ready
// again; TestCrash fails beyond it and reports the times it saw.
const crashReadyBound = 30 * time.Second

// TestCrash is the crash-safety test (issue 12 item 1): `numbergate serve`
// runs as a process (RADIUS accounting plus a static map, one data
// directory), loadgen drives accounting and complete flows at full speed,
// and the process is killed with SIGKILL at a random moment, then restarted
// on the same data. After each restart:
//
//   - every acknowledged Accounting-Request is reflected: each subscriber's
//     session (read with `numbergate sessions list`) is the one its last
//     acknowledged request left, or the one its unanswered request would
//     leave (the server may store a request and die before answering);
//   - every access token that answered /verify once answers 401;
//   - every redeemed code stays redeemed (/token: invalid_grant);
//   - every consumed client-assertion jti stays consumed (invalid_client);
//   - the database passes PRAGMA integrity_check (SQLite);
//   - the server is ready again within crashReadyBound (times logged).
//
// More rounds: go test ./cmd/numbergate -run TestCrash -crash.rounds=50
// (or NUMBERGATE_CRASH_ROUNDS=50); NUMBERGATE_CRASH_SEED replays the
// random kill moments. TestCrashPostgres runs the same on PostgreSQL.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	runCrash(t, "", 3)
}

// TestCrashPostgres is TestCrash on the PostgreSQL store (a schema of its
// own from NUMBERGATE_TEST_POSTGRES_DSN; skipped without it): 2 rounds, or
// as many as -crash.rounds says. The integrity check is SQLite's and is
// left out; the database recovers with its own WAL.
func TestCrashPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	dsn := pgtest.DSN(t)
	runCrash(t, fmt.Sprintf("store:\n  driver: postgres\n  dsn: %q\n", dsn), 2)
}

// runCrash is the crash test on the store the YAML section selects ("":
// SQLite in the data directory).
func runCrash(t *testing.T, store string, rounds int) {
	if v, err := strconv.Atoi(os.Getenv("NUMBERGATE_CRASH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	if *crashRounds > 0 {
		rounds = *crashRounds
	}
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("NUMBERGATE_CRASH_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("%d rounds, NUMBERGATE_CRASH_SEED=%d", rounds, seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1))

	const devices = 16
	n := newProcNode(t, 91, devices, store)
	var devs []*loadgen.Device
	for i := 1; i <= devices; i++ {
		devs = append(devs, procDevice(91, i))
	}
	var gws []*loadgen.Gateway
	for i := 1; i <= 8; i++ {
		gws = append(gws, &loadgen.Gateway{Server: n.radius, Secret: []byte(procSecret),
			Source: netip.AddrFrom4([4]byte{127, 0, 92, byte(i)}), Timeout: 500 * time.Millisecond})
	}
	var subs []loadgen.Subscriber
	for i := range 256 {
		subs = append(subs, loadgen.Subscriber{Addr: netip.AddrFrom4([4]byte{10, 91, byte(i / 250), byte(i%250 + 1)}),
			MSISDN: fmt.Sprintf("+34691%06d", i)})
	}
	acc := &loadgen.Accounting{Gateways: gws, Subscribers: subs, Interims: 2, SessionPrefix: "crash"}
	flow := &loadgen.Flow{Client: n.client}

	var (
		readyMax time.Duration
		total    crashChecked
		acked    int
	)
	first := n.start()
	t.Logf("first start ready in %s", first)
	for round := 1; round <= rounds; round++ {
		load := time.Duration(rng.IntN(1200)) * time.Millisecond
		flows, rep := crashRound(t, n, acc, flow, devs, load)
		n.checkLogs()
		ready := n.start()
		readyMax = max(readyMax, ready)
		if ready > crashReadyBound {
			t.Errorf("round %d: ready %s after the restart, bound %s", round, ready, crashReadyBound)
		}
		n.sqliteIntegrity()
		c := checkAfterCrash(t, n, flow, devs[0], flows, rep)
		acked += rep.Acked
		total.tokens += c.tokens
		total.codes += c.codes
		t.Logf("round %d: killed %s after the first acknowledgements; %d accounting requests acknowledged; %d codes redeemed, %d tokens spent; ready again in %s; checked %d sessions, %d tokens, %d codes, %d jtis",
			round, load, rep.Acked, c.codes, c.tokens, ready, c.sessions, c.tokens, c.codes, c.jtis)
		if t.Failed() {
			t.Logf("server output:\n%s", n.logs.String())
			return
		}
	}
	n.checkLogs()
	if acked == 0 || total.codes == 0 || total.tokens == 0 {
		t.Fatalf("the load acknowledged nothing to check (%d accounting, %d codes, %d tokens): the test proved nothing", acked, total.codes, total.tokens)
	}
	t.Logf("ready after restart: at most %s over %d rounds (bound %s)", readyMax, rounds, crashReadyBound)
}

// crashRound drives accounting and flows at full speed for load, kills the
// server with SIGKILL, and returns what was acknowledged.
func crashRound(t *testing.T, n *procNode, acc *loadgen.Accounting, flow *loadgen.Flow, devs []*loadgen.Device, load time.Duration) ([]loadgen.Result, loadgen.AccountingReport) {
	t.Helper()
	return loadThenStop(t, acc, flow, devs, load, n.kill, false)
}

// loadThenStop drives accounting and flows at full speed until some of
// each were acknowledged (at least one spent token and one acknowledged
// accounting request, however slow the machine), then for load more,
// then calls stop (which returns once the server process has exited)
// while the load goes on, and returns what was acknowledged. A wrong
// answer from the server is an error before stop is called, and after it
// too when strict (a server draining gracefully still answers correctly or
// not at all).
func loadThenStop(t *testing.T, acc *loadgen.Accounting, flow *loadgen.Flow, devs []*loadgen.Device, load time.Duration, stop func(), strict bool) ([]loadgen.Result, loadgen.AccountingReport) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu       sync.Mutex
		results  []loadgen.Result
		spent    int
		acked    int
		stopping bool
		rep      loadgen.AccountingReport
		wg       sync.WaitGroup
	)
	acc.Observe = func(_ loadgen.Status, _ time.Duration, ok bool) {
		if ok {
			mu.Lock()
			acked++
			mu.Unlock()
		}
	}
	defer func() { acc.Observe = nil }()
	fs := &loadgen.Flows{Flow: flow, Devices: devs, Users: 8, OnResult: func(r loadgen.Result, err error) {
		mu.Lock()
		defer mu.Unlock()
		var se *loadgen.StepError
		if err != nil && errors.As(err, &se) && se.Answered() && (strict || !stopping) {
			// A live server gave a wrong answer: that is a defect.
			t.Errorf("flow answered wrongly under load: %v", err)
		}
		if r.Spent {
			spent++
		}
		results = append(results, r)
	}}
	wg.Add(2)
	go func() {
		defer wg.Done()
		var err error
		if rep, err = acc.Run(ctx); err != nil {
			t.Errorf("accounting: %v", err)
		}
	}()
	go func() {
		defer wg.Done()
		if _, err := fs.Run(ctx); err != nil {
			t.Errorf("flows: %v", err)
		}
	}()
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		progress := spent > 0 && acked > 0
		mu.Unlock()
		if progress {
			break
		}
		if time.Since(start) > 2*time.Minute {
			t.Errorf("no flow and no accounting request acknowledged in 2 minutes of load")
			break
		}
	}
	time.Sleep(load)
	mu.Lock()
	stopping = true
	mu.Unlock()
	stop()
	cancel()
	wg.Wait()
	return results, rep
}

type crashChecked struct{ sessions, tokens, codes, jtis int }

// limitedErrorf reports the first 10 failures of a kind, then counts.
type limitedErrorf struct {
	t    *testing.T
	kind string
	n    int
}

func (l *limitedErrorf) Errorf(format string, args ...any) {
	l.t.Helper()
	l.n++
	if l.n <= 10 {
		l.t.Errorf(format, args...)
	}
}

func (l *limitedErrorf) done() {
	if l.n > 10 {
		l.t.Errorf("%d more %s failures", l.n-10, l.kind)
	}
}

// checkAfterCrash checks, on the restarted server, that everything the
// killed one acknowledged is still true.
func checkAfterCrash(t *testing.T, n *procNode, flow *loadgen.Flow, dev *loadgen.Device, flows []loadgen.Result, rep loadgen.AccountingReport) crashChecked {
	t.Helper()
	ctx := context.Background()
	var c crashChecked

	// Accounting: each subscriber's session is what its acknowledged
	// history allows.
	sessions := n.sessions()
	lost := &limitedErrorf{t: t, kind: "accounting"}
	defer lost.done()
	for _, s := range rep.Subscribers {
		got, found := sessions[s.Addr]
		if !s.Allows(found, got[0], got[1]) {
			lost.Errorf("%s: after restart found=%v session %q; last acknowledged %+v, unanswered %+v", s.Addr, found, got[1], s.LastAcked, s.Pending)
		}
		c.sessions++
	}

	// Tokens first: replaying a redeemed code revokes its grant and
	// deletes its tokens.
	replay := &limitedErrorf{t: t, kind: "replay"}
	defer replay.done()
	for _, r := range flows {
		if !r.Spent {
			continue
		}
		a, err := flow.Verify(ctx, r.AccessToken, "+34600000000")
		if err != nil || a.Status != http.StatusUnauthorized {
			replay.Errorf("a spent token after restart: %+v %v, want 401", a, err)
		}
		c.tokens++
	}
	for _, r := range flows {
		if !r.Redeemed {
			continue
		}
		assertion, _, err := flow.Assertion()
		if err != nil {
			t.Fatal(err)
		}
		tok, err := flow.Exchange(ctx, r.Code, r.Verifier, assertion)
		if err != nil || tok.Status != http.StatusBadRequest || tok.Error != "invalid_grant" {
			replay.Errorf("a redeemed code after restart: status %d %q %v, want 400 invalid_grant", tok.Status, tok.Error, err)
		}
		c.codes++
	}

	// jtis: a fresh code with each consumed assertion. Client
	// authentication fails before the code is looked at, so one code
	// serves every replay; if a jti were accepted, the code would be
	// redeemed and the next replay would say invalid_grant: both fail.
	a, err := flow.Authorize(ctx, dev)
	if err != nil {
		t.Fatalf("authorize after restart: %v", err)
	}
	for _, r := range flows {
		if !r.Redeemed {
			continue
		}
		tok, err := flow.Exchange(ctx, a.Code, a.Verifier, r.Assertion)
		if err != nil || tok.Status != http.StatusUnauthorized || tok.Error != "invalid_client" {
			replay.Errorf("a consumed jti after restart: status %d %q %v, want 401 invalid_client", tok.Status, tok.Error, err)
		}
		c.jtis++
	}
	return c
}
