package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/loadgen"
	"github.com/numbergate/numbergate/internal/sqlite"
)

// TestSoak is the long mixed run of issue 12 item 4, off unless
// NUMBERGATE_SOAK gives its length:
//
//	NUMBERGATE_SOAK=30m NUMBERGATE_SOAK_OUT=docs/soak \
//	  go test ./cmd/numbergate -run TestSoak -timeout 40m -v
//
// `numbergate serve` runs as a process (built without -race when the test
// runs without it) with RADIUS accounting and a static map; complete flows
// (NUMBERGATE_SOAK_FLOWS per second, default 40) and accounting
// (NUMBERGATE_SOAK_ACCT per second, default 400: Start, two
// Interim-Updates, Stop, again, for 4,000 subscribers) run together while
// expiry runs as configured (tokens 300 s, codes 60 s, the store's
// collection every minute, RADIUS idle sessions after 10 minutes). Every
// 10 s it records the server's resident memory, the database and WAL
// sizes, the live rows per table, and the flows' and accounting requests'
// p50/p99/max latency, into NUMBERGATE_SOAK_OUT/soak.csv; with gnuplot
// installed it also draws soak.png from docs/soak.gp. It fails only on a
// wrong answer (flows that got no answer are counted in flow_errors); the
// figures are for docs/RELIABILITY.md.
func TestSoak(t *testing.T) {
	length, err := time.ParseDuration(os.Getenv("NUMBERGATE_SOAK"))
	if err != nil || length <= 0 {
		t.Skip("soak run skipped: set NUMBERGATE_SOAK=30m (see docs/RELIABILITY.md)")
	}
	out := os.Getenv("NUMBERGATE_SOAK_OUT")
	if out == "" {
		out = t.TempDir()
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	flowRate, acctRate := envFloat("NUMBERGATE_SOAK_FLOWS", 40), envFloat("NUMBERGATE_SOAK_ACCT", 400)
	const devices = 64
	n := newProcNode(t, 98, devices, "")
	// Shorter idle expiry than the default, so the sweep runs during the soak.
	cfg, _ := os.ReadFile(n.cfgPath)
	if err := os.WriteFile(n.cfgPath, []byte(strings.Replace(string(cfg), "idle_timeout: 24h", "idle_timeout: 10m", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	var devs []*loadgen.Device
	for i := 1; i <= devices; i++ {
		devs = append(devs, procDevice(98, i))
	}
	var gws []*loadgen.Gateway
	for i := 1; i <= 16; i++ {
		gws = append(gws, &loadgen.Gateway{Server: n.radius, Secret: []byte(procSecret),
			Source: netip.AddrFrom4([4]byte{127, 0, 99, byte(i)}), Timeout: 2 * time.Second, Retries: 2})
	}
	var subs []loadgen.Subscriber
	for i := range 4000 {
		subs = append(subs, loadgen.Subscriber{Addr: netip.AddrFrom4([4]byte{10, 98, byte(i / 250), byte(i%250 + 1)}),
			MSISDN: fmt.Sprintf("+34698%06d", i)})
	}
	n.start()
	pid := n.cmd.Process.Pid

	var (
		mu       sync.Mutex
		flowLat  []time.Duration
		acctLat  []time.Duration
		flowErrs int
		wrong    int
		acctLost int
	)
	acc := &loadgen.Accounting{Gateways: gws, Subscribers: subs, Interims: 2, Rate: acctRate, SessionPrefix: "soak",
		Observe: func(_ loadgen.Status, rtt time.Duration, acked bool) {
			mu.Lock()
			defer mu.Unlock()
			if acked {
				acctLat = append(acctLat, rtt)
			} else {
				acctLost++
			}
		}}
	fs := &loadgen.Flows{Flow: &loadgen.Flow{Client: n.client}, Devices: devs, Users: 16, Rate: flowRate,
		OnResult: func(r loadgen.Result, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				// Counted either way; a wrong answer also fails the run
				// (an unanswered request on a busy machine does not).
				flowErrs++
				var se *loadgen.StepError
				if !errors.As(err, &se) || se.Answered() {
					wrong++
					if wrong <= 10 {
						t.Errorf("flow: %v", err)
					}
				}
				return
			}
			flowLat = append(flowLat, r.Authorize+r.Token+r.Verify)
		}}

	csvPath := filepath.Join(out, "soak.csv")
	csv, err := os.Create(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer csv.Close()
	fmt.Fprintln(csv, "t_s,rss_mb,db_mb,wal_mb,tokens,grants,jtis,sessions,flows,flow_errors,flow_p50_ms,flow_p99_ms,flow_max_ms,acct,acct_unanswered,acct_p50_ms,acct_p99_ms,acct_max_ms")

	db, err := sql.Open("sqlite", "file:"+filepath.Join(n.dir, "data", sqlite.FileName)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	ctx, cancel := context.WithTimeout(context.Background(), length)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if _, err := acc.Run(ctx); err != nil {
			t.Errorf("accounting: %v", err)
		}
	}()
	go func() {
		defer wg.Done()
		if _, err := fs.Run(ctx); err != nil {
			t.Errorf("flows: %v", err)
		}
	}()

	t0 := time.Now()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	type sample struct {
		at                time.Duration
		rssMB, dbMB       float64
		flowP99, acctP99  float64
		flows, acct, lost int
		errors            int
		tokens, sessions  int
		grants, jtis      int
		walMB             float64
		flowP50, flowMax  float64
		acctP50, acctMax  float64
	}
	var samples []sample
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		mu.Lock()
		fl, al, fe, lost := flowLat, acctLat, flowErrs, acctLost
		flowLat, acctLat, flowErrs, acctLost = nil, nil, 0, 0
		mu.Unlock()
		s := sample{at: time.Since(t0), flows: len(fl), acct: len(al), errors: fe, lost: lost}
		s.rssMB = rssMB(t, pid)
		s.dbMB = fileMB(filepath.Join(n.dir, "data", sqlite.FileName))
		s.walMB = fileMB(filepath.Join(n.dir, "data", sqlite.FileName+"-wal"))
		for _, c := range []struct {
			table string
			v     *int
		}{{"tokens", &s.tokens}, {"grants", &s.grants}, {"jtis", &s.jtis}, {"network_sessions", &s.sessions}} {
			_ = db.QueryRow("SELECT count(*) FROM " + c.table).Scan(c.v)
		}
		s.flowP50, s.flowP99, s.flowMax = quantiles(fl)
		s.acctP50, s.acctP99, s.acctMax = quantiles(al)
		samples = append(samples, s)
		fmt.Fprintf(csv, "%.0f,%.1f,%.2f,%.2f,%d,%d,%d,%d,%d,%d,%.1f,%.1f,%.1f,%d,%d,%.1f,%.1f,%.1f\n",
			s.at.Seconds(), s.rssMB, s.dbMB, s.walMB, s.tokens, s.grants, s.jtis, s.sessions,
			s.flows, s.errors, s.flowP50, s.flowP99, s.flowMax, s.acct, s.lost, s.acctP50, s.acctP99, s.acctMax)
		t.Logf("%4.0fs rss %.1f MB db %.2f MB wal %.2f MB rows tokens %d grants %d jtis %d sessions %d | flows %d (%d errors) p50 %.1f p99 %.1f ms | acct %d (%d unanswered) p50 %.1f p99 %.1f ms",
			s.at.Seconds(), s.rssMB, s.dbMB, s.walMB, s.tokens, s.grants, s.jtis, s.sessions, s.flows, s.errors, s.flowP50, s.flowP99, s.acct, s.lost, s.acctP50, s.acctP99)
	}
	wg.Wait()
	took, err := n.terminate(drainTimeout + answerWait)
	if err != nil {
		t.Errorf("serve exited with %v after SIGTERM", err)
	}
	n.checkLogs()
	t.Logf("stopped in %s; data in %s", took, csvPath)
	if len(samples) >= 12 {
		first, last := samples[:6], samples[len(samples)-6:]
		agg := func(ss []sample, f func(sample) float64) (lo, hi float64) {
			lo, hi = f(ss[0]), f(ss[0])
			for _, s := range ss {
				lo, hi = min(lo, f(s)), max(hi, f(s))
			}
			return
		}
		fl, fh := agg(first, func(s sample) float64 { return s.flowP99 })
		ll, lh := agg(last, func(s sample) float64 { return s.flowP99 })
		t.Logf("flow p99 per 10 s: first minute %.1f..%.1f ms, last minute %.1f..%.1f ms", fl, fh, ll, lh)
		al, ah := agg(first, func(s sample) float64 { return s.acctP99 })
		bl, bh := agg(last, func(s sample) float64 { return s.acctP99 })
		t.Logf("accounting p99 per 10 s: first minute %.1f..%.1f ms, last minute %.1f..%.1f ms", al, ah, bl, bh)
		_, rmax := agg(samples, func(s sample) float64 { return s.rssMB })
		_, dmax := agg(samples, func(s sample) float64 { return s.dbMB + s.walMB })
		t.Logf("resident memory: %.1f MB at 1 min, %.1f MB at the end, %.1f MB at most; database+WAL at most %.2f MB",
			samples[5].rssMB, samples[len(samples)-1].rssMB, rmax, dmax)
	}
	if gp, err := exec.LookPath("gnuplot"); err == nil {
		script, _ := filepath.Abs("../../docs/soak.gp")
		cmd := exec.Command(gp, "-e", fmt.Sprintf("csv='%s'; png='%s'", csvPath, filepath.Join(out, "soak.png")), script)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("gnuplot: %v\n%s", err, b)
		}
	} else {
		t.Logf("gnuplot not installed (apt-get install gnuplot-nox): no plot drawn")
	}
}

func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil && v > 0 {
		return v
	}
	return def
}

// quantiles returns p50, p99 and max of ds in milliseconds (zeros when
// empty).
func quantiles(ds []time.Duration) (p50, p99, mx float64) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := min(int(q*float64(len(ds))), len(ds)-1)
		return float64(ds[i].Microseconds()) / 1000
	}
	return at(0.50), at(0.99), float64(ds[len(ds)-1].Microseconds()) / 1000
}

func rssMB(t *testing.T, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Logf("rss: %v", err)
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func fileMB(path string) float64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return float64(fi.Size()) / (1 << 20)
}
