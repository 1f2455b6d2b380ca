package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/numbergate/numbergate/internal/cmdline"
	"github.com/numbergate/numbergate/internal/config"
	"github.com/numbergate/numbergate/internal/loadgen"
	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/sandbox"
)

const benchUsage = `usage: numbergate bench <flow|verify|radius|mixed|baseline> [flags]

Drives a running numbergate as its real parties would (internal/loadgen) and
reports throughput, latency percentiles, errors, the server's CPU
milliseconds per operation (with --pid or --admin), this load generator's
own CPU milliseconds per operation ("bench CPU ms/op": what it takes of the
cores it may share with the server), and the ratio to "baseline", a trivial
net/http JSON handler run by the same client code in the same invocation
(this machine's ceiling for HTTP work).

  flow      complete flows: /authorize as the device, /token with a fresh
            ES256 client assertion, /verify; every answer checked
  verify    /verify with tokens minted beforehand (POST /sandbox/tokens),
            each used once
  radius    RADIUS Accounting Start/Interim-Update/Stop from many gateways
            and subscribers, then (with --config) a check that every
            subscriber's session is what its acknowledged requests left
  mixed     flow and radius at once (--flow-rate, --radius-rate)
  baseline  the baseline alone
  client    onboard a bench client into a serve configuration's store and
            write its credentials file (--config FILE --out FILE), for
            flow and mixed against serve

Run "numbergate bench <mode> -h" for the flags; docs/PERFORMANCE.md has
worked examples.
`

// benchOpts are the flags every mode shares.
type benchOpts struct {
	mode        string
	clientFile  string
	users       int
	duration    time.Duration
	baseline    time.Duration
	jsonOut     bool
	progress    bool
	pid         int
	admin       string
	devices     int
	numberBase  string
	sourceNet   string
	tokens      int
	radiusAddr  string
	secret      string
	gateways    int
	gatewayNet  string
	subscribers int
	subNet      string
	interims    int
	radiusRate  float64
	flowRate    float64
	configPath  string
}

// benchResult is one row of the report.
type benchResult struct {
	Name       string  `json:"name"`
	Ops        int     `json:"ops"`
	Errors     int     `json:"errors"`
	Seconds    float64 `json:"seconds"`
	PerSecond  float64 `json:"per_second"`
	P50ms      float64 `json:"p50_ms"`
	P90ms      float64 `json:"p90_ms"`
	P99ms      float64 `json:"p99_ms"`
	Maxms      float64 `json:"max_ms"`
	CPUPerOpms float64 `json:"server_cpu_ms_per_op,omitempty"`
	// CPUSource says whose CPU time CPUPerOpms is.
	CPUSource string `json:"cpu_source,omitempty"`
	// BenchCPUPerOpms is the CPU time this process (the load generator)
	// used per operation during the run, from /proc/self/stat: what the
	// generator takes of the machine the server shares with it.
	BenchCPUPerOpms float64 `json:"bench_cpu_ms_per_op,omitempty"`
	// Ratio is PerSecond over the baseline's requests per second.
	Ratio float64 `json:"ratio_to_baseline,omitempty"`
	// Lost and Misapplied count RADIUS subscribers whose stored session
	// contradicts what was acknowledged (radius with --config only);
	// Checked is how many were checked.
	Checked    int      `json:"checked,omitempty"`
	Lost       int      `json:"lost,omitempty"`
	Misapplied int      `json:"misapplied,omitempty"`
	FirstError string   `json:"first_error,omitempty"`
	Notes      []string `json:"notes,omitempty"`
}

type benchReport struct {
	Mode    string        `json:"mode"`
	Started time.Time     `json:"started"`
	Load    string        `json:"load_average,omitempty"`
	CPUs    int           `json:"cpus"`
	Results []benchResult `json:"results"`
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || cmdline.IsHelp(args[0]) {
		fmt.Fprint(stdout, benchUsage)
		if len(args) == 0 {
			return errors.New("bench: a mode is required (numbergate bench -h)")
		}
		return cmdline.ErrHelp
	}
	o := benchOpts{mode: args[0]}
	switch o.mode {
	case "client":
		return benchClient(ctx, args[1:], stdout)
	case "flow", "verify", "radius", "mixed", "baseline":
	default:
		return fmt.Errorf("bench: unknown mode %q (flow, verify, radius, mixed, baseline or client)", o.mode)
	}
	fs := cmdline.New("bench "+o.mode, "[flags]", stdout)
	fs.StringVar(&o.clientFile, "client", filepath.Join(defaultSandboxData, sandbox.CredentialsFile), "client credentials `FILE` (issuer, client_id, redirect_uri, private_jwk; the sandbox writes one)")
	fs.IntVar(&o.users, "users", 32, "concurrent virtual users (HTTP modes)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long each measured run lasts")
	fs.DurationVar(&o.baseline, "baseline", 5*time.Second, "how long the baseline runs first in the same invocation (0: skip)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	fs.BoolVar(&o.progress, "progress", true, "print progress to stderr every 2 s")
	fs.IntVar(&o.pid, "pid", 0, "the server's `PID`, to read its CPU time from /proc/PID/stat")
	fs.StringVar(&o.admin, "admin", "", "the server's admin `URL` (e.g. http://127.0.0.1:9090) when --pid is not given: its PID is found from the process metrics (start time) when it runs on this machine, else its CPU is read from process_cpu_seconds_total")
	fs.IntVar(&o.devices, "devices", 64, "flow: simulated devices")
	fs.StringVar(&o.numberBase, "number-base", "+34600100000", "flow: device i has this number plus i")
	fs.StringVar(&o.sourceNet, "source-net", "", "flow: send /authorize from addresses of this loopback `CIDR` (device i from its i+1-th address; a `serve` static map or RADIUS session must map them to --number-base+i) instead of the sandbox's login_hint")
	fs.IntVar(&o.tokens, "tokens", 50000, "verify: tokens minted beforehand (each used once; the run stops when they are spent)")
	fs.StringVar(&o.radiusAddr, "radius", "127.0.0.1:1813", "radius: the server's accounting `ADDR`")
	fs.StringVar(&o.secret, "secret", "", "radius: the RADIUS client's shared secret")
	fs.IntVar(&o.gateways, "gateways", 64, "radius: gateways, each with one request in flight")
	fs.StringVar(&o.gatewayNet, "gateway-net", "127.0.0.0/8", "radius: gateways send from addresses of this `CIDR` (from its second address on); the server's RADIUS clients must cover it")
	fs.IntVar(&o.subscribers, "subscribers", 16384, "radius: subscribers")
	fs.StringVar(&o.subNet, "subscriber-net", "10.128.0.0/9", "radius: subscriber addresses come from this IPv4 `CIDR`")
	fs.IntVar(&o.interims, "interims", 2, "radius: Interim-Updates per session")
	fs.Float64Var(&o.radiusRate, "radius-rate", 0, "radius, mixed: accounting requests per second (0: as fast as answered)")
	fs.Float64Var(&o.flowRate, "flow-rate", 0, "flow, mixed: flows started per second (0: as fast as answered)")
	fs.StringVar(&o.configPath, "config", "", "radius, mixed: the server's configuration `FILE`; after the run, every subscriber's session is checked in its store")
	if _, err := fs.Parse(args[1:], 0); err != nil {
		return err
	}
	if o.users < 1 || o.duration <= 0 {
		return errors.New("bench: --users must be at least 1 and --duration positive")
	}
	var progress io.Writer = io.Discard
	if o.progress {
		progress = stderr
	}
	rep := benchReport{Mode: o.mode, Started: time.Now().UTC(), Load: loadAverage(), CPUs: numCPU()}

	var base *benchResult
	if o.baseline > 0 || o.mode == "baseline" {
		d := o.baseline
		if o.mode == "baseline" {
			d = o.duration
		}
		r, err := benchBaseline(ctx, o.users, d, progress)
		if err != nil {
			return err
		}
		rep.Results = append(rep.Results, r)
		base = &rep.Results[0]
	}
	cpu := newCPUMeter(o.pid, o.admin)
	var results []benchResult
	var err error
	switch o.mode {
	case "flow":
		results, err = benchFlowMode(ctx, o, cpu, progress)
	case "verify":
		results, err = benchVerifyMode(ctx, o, cpu, progress)
	case "radius":
		results, err = benchRadiusMode(ctx, o, cpu, progress)
	case "mixed":
		results, err = benchMixedMode(ctx, o, cpu, progress)
	}
	if err != nil {
		return err
	}
	for _, r := range results {
		if base != nil && base.PerSecond > 0 {
			r.Ratio = r.PerSecond / base.PerSecond
		}
		rep.Results = append(rep.Results, r)
	}
	rep.Load += " -> " + loadAverage()
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printBenchTable(stdout, rep)
	return nil
}

func printBenchTable(w io.Writer, rep benchReport) {
	fmt.Fprintf(w, "numbergate bench %s, %s, %d CPUs, load average %s\n", rep.Mode, rep.Started.Format(time.RFC3339), rep.CPUs, rep.Load)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tops\terrors\tops/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\tserver CPU ms/op\tbench CPU ms/op\tvs baseline\t")
	for _, r := range rep.Results {
		cpu, bcpu, ratio := "-", "-", "-"
		if r.CPUSource != "" {
			cpu = fmt.Sprintf("%.3f", r.CPUPerOpms)
		}
		if r.BenchCPUPerOpms > 0 {
			bcpu = fmt.Sprintf("%.3f", r.BenchCPUPerOpms)
		}
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.3f", r.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%s\t%s\t\n",
			r.Name, r.Ops, r.Errors, r.PerSecond, r.P50ms, r.P90ms, r.P99ms, r.Maxms, cpu, bcpu, ratio)
	}
	tw.Flush()
	for _, r := range rep.Results {
		if r.Checked > 0 {
			fmt.Fprintf(w, "%s: %d subscribers checked in the store: %d lost, %d misapplied\n", r.Name, r.Checked, r.Lost, r.Misapplied)
		}
		if r.CPUSource != "" {
			fmt.Fprintf(w, "%s: CPU from %s\n", r.Name, r.CPUSource)
		}
		if r.FirstError != "" {
			fmt.Fprintf(w, "%s: first error: %s\n", r.Name, r.FirstError)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "%s: %s\n", r.Name, n)
		}
	}
}

// recorder collects latencies and errors of one run, safe for concurrent
// use.
type recorder struct {
	name     string
	mu       sync.Mutex
	lat      []time.Duration
	errs     int
	firstErr string
	ops      atomic.Int64
}

func (r *recorder) add(d time.Duration, err error) {
	r.ops.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs++
		if r.firstErr == "" {
			r.firstErr = err.Error()
		}
		return
	}
	r.lat = append(r.lat, d)
}

func (r *recorder) result(elapsed time.Duration) benchResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	slices.Sort(r.lat)
	pct := func(p float64) float64 {
		if len(r.lat) == 0 {
			return 0
		}
		i := int(math.Ceil(p*float64(len(r.lat)))) - 1
		return float64(r.lat[max(i, 0)]) / float64(time.Millisecond)
	}
	ops := int(r.ops.Load())
	return benchResult{
		Name: r.name, Ops: ops, Errors: r.errs, Seconds: elapsed.Seconds(),
		PerSecond: float64(ops-r.errs) / elapsed.Seconds(),
		P50ms:     pct(.50), P90ms: pct(.90), P99ms: pct(.99), Maxms: pct(1),
		FirstError: r.firstErr,
	}
}

// progressLoop prints the recorders' counts every 2 s until ctx ends.
func progressLoop(ctx context.Context, w io.Writer, rs ...*recorder) {
	if w == io.Discard {
		return
	}
	t0 := time.Now()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	last := make([]int64, len(rs))
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			var parts []string
			for i, r := range rs {
				n := r.ops.Load()
				parts = append(parts, fmt.Sprintf("%s %d (%.0f/s)", r.name, n, float64(n-last[i])/2))
				last[i] = n
			}
			fmt.Fprintf(w, "bench: %4.0fs %s\n", time.Since(t0).Seconds(), strings.Join(parts, ", "))
		}
	}
}

// cpuUse is the CPU seconds a measured run used: the server's and this
// process's (the load generator's); -1 when unknown.
type cpuUse struct{ server, bench float64 }

// measure runs fn for d with progress, and returns the elapsed time and
// the CPU seconds the server and this process used meanwhile.
func measure(ctx context.Context, d time.Duration, cpu *cpuMeter, progress io.Writer, fn func(context.Context), rs ...*recorder) (time.Duration, cpuUse) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	pctx, pcancel := context.WithCancel(ctx)
	go progressLoop(pctx, progress, rs...)
	self := selfCPU()
	c0, b0 := cpu.seconds(), self.seconds()
	t0 := time.Now()
	fn(ctx)
	elapsed := time.Since(t0)
	c1, b1 := cpu.seconds(), self.seconds()
	pcancel()
	use := cpuUse{server: -1, bench: -1}
	if c0 >= 0 && c1 >= 0 {
		use.server = c1 - c0
	}
	if b0 >= 0 && b1 >= 0 {
		use.bench = b1 - b0
	}
	return elapsed, use
}

// selfCPU reads this process's CPU time (/proc/self/stat by PID).
func selfCPU() *cpuMeter { return newCPUMeter(os.Getpid(), "") }

// withCPU sets the per-operation CPU columns of r from a run's use.
func withCPU(r benchResult, use cpuUse, cpu *cpuMeter) benchResult {
	if r.Ops == 0 {
		return r
	}
	if use.server >= 0 {
		r.CPUPerOpms = use.server * 1000 / float64(r.Ops)
		r.CPUSource = cpu.source
	}
	if use.bench >= 0 {
		r.BenchCPUPerOpms = use.bench * 1000 / float64(r.Ops)
	}
	return r
}

// benchBaseline serves a trivial JSON handler in this process and drives it
// with the same HTTP client setup as the flows.
func benchBaseline(ctx context.Context, users int, d time.Duration, progress io.Writer) (benchResult, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return benchResult{}, fmt.Errorf("bench: baseline: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			PhoneNumber string `json:"phoneNumber"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]bool{"devicePhoneNumberVerified": body.PhoneNumber != ""})
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/verify"
	client := loadgen.NewHTTPClient()
	rec := &recorder{name: "baseline"}
	self := selfCPU()
	elapsed, use := measure(ctx, d, self, progress, func(ctx context.Context) {
		var wg sync.WaitGroup
		for range users {
			wg.Go(func() {
				for ctx.Err() == nil {
					t0 := time.Now()
					err := baselineCall(ctx, client, url)
					if ctx.Err() != nil {
						return
					}
					rec.add(time.Since(t0), err)
				}
			})
		}
		wg.Wait()
	}, rec)
	r := withCPU(rec.result(elapsed), use, self)
	r.BenchCPUPerOpms = 0 // the same process: all of it is in the server column
	if r.CPUSource != "" {
		r.CPUSource = "this process (handler and load generator together)"
	}
	r.Notes = append(r.Notes, "a net/http JSON handler in the bench process, the same client code")
	return r, nil
}

func baselineCall(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{"phoneNumber":"+34600000001"}`))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out struct {
		Verified bool `json:"devicePhoneNumberVerified"`
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("baseline: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || !out.Verified {
		return fmt.Errorf("baseline: wrong answer (%v)", err)
	}
	return nil
}

// readBenchClient reads a credentials file in sandbox-client.json's format.
func readBenchClient(path string) (loadgen.Client, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return loadgen.Client{}, fmt.Errorf("bench: --client: %w (start `numbergate sandbox` first, or write one for a `serve` client)", err)
	}
	var c sandbox.Credentials
	if err := json.Unmarshal(data, &c); err != nil {
		return loadgen.Client{}, fmt.Errorf("bench: --client %s: %w", path, err)
	}
	var key jose.JSONWebKey
	if err := key.UnmarshalJSON(c.PrivateJWK); err != nil || key.IsPublic() || !key.Valid() {
		return loadgen.Client{}, fmt.Errorf("bench: --client %s: private_jwk is not a valid private key (%v)", path, err)
	}
	return loadgen.Client{Issuer: strings.TrimRight(c.Issuer, "/"), ID: c.ClientID, RedirectURI: c.RedirectURI, Key: key}, nil
}

// benchDevices builds the flow's devices: sandbox login_hints, or source
// addresses of --source-net.
func benchDevices(o benchOpts) ([]*loadgen.Device, error) {
	base, err := strconv.ParseUint(strings.TrimPrefix(o.numberBase, "+"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("bench: --number-base %q: not a number", o.numberBase)
	}
	var p netip.Prefix
	if o.sourceNet != "" {
		if p, err = netip.ParsePrefix(o.sourceNet); err != nil || !p.Addr().IsLoopback() {
			return nil, fmt.Errorf("bench: --source-net %q: want a loopback CIDR such as 127.0.60.0/24", o.sourceNet)
		}
	}
	var ds []*loadgen.Device
	a := p.Masked().Addr()
	for i := range o.devices {
		n := "+" + strconv.FormatUint(base+uint64(i), 10)
		if _, err := nv.NormalizeMSISDN(n); err != nil {
			return nil, fmt.Errorf("bench: device number %s: %w", n, err)
		}
		d := &loadgen.Device{MSISDN: n}
		if p.IsValid() {
			a = a.Next()
			if !p.Contains(a) {
				return nil, fmt.Errorf("bench: --source-net %s holds fewer than %d devices", p, o.devices)
			}
			d.Source = a
		} else {
			d.LoginHint = "tel:" + n
		}
		ds = append(ds, d)
	}
	return ds, nil
}

func benchFlows(ctx context.Context, o benchOpts, rec *recorder, flowRate float64) (*loadgen.Flows, error) {
	c, err := readBenchClient(o.clientFile)
	if err != nil {
		return nil, err
	}
	devs, err := benchDevices(o)
	if err != nil {
		return nil, err
	}
	flow := &loadgen.Flow{Client: c, HTTP: loadgen.NewHTTPClient()}
	// One flow first: a setup problem shows as one clear error, not a
	// table of failures.
	if _, err := flow.Run(ctx, devs[0]); err != nil {
		return nil, fmt.Errorf("bench: a first flow against %s failed: %w", c.Issuer, err)
	}
	return &loadgen.Flows{Flow: flow, Devices: devs, Users: o.users, Rate: flowRate,
		OnResult: func(r loadgen.Result, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return // cut short by the end of the run
			}
			rec.add(r.Authorize+r.Token+r.Verify, err)
		}}, nil
}

func benchFlowMode(ctx context.Context, o benchOpts, cpu *cpuMeter, progress io.Writer) ([]benchResult, error) {
	rec := &recorder{name: "flow"}
	fl, err := benchFlows(ctx, o, rec, o.flowRate)
	if err != nil {
		return nil, err
	}
	elapsed, use := measure(ctx, o.duration, cpu, progress, func(ctx context.Context) { fl.Run(ctx) }, rec)
	r := withCPU(rec.result(elapsed), use, cpu)
	r.Notes = append(r.Notes, fmt.Sprintf("%d users; latency is the whole flow (authorize + token + verify, 3 HTTP requests)", o.users))
	return []benchResult{r}, nil
}

// benchVerifyMode mints tokens through POST /sandbox/tokens, then spends
// each once at /verify.
func benchVerifyMode(ctx context.Context, o benchOpts, cpu *cpuMeter, progress io.Writer) ([]benchResult, error) {
	c, err := readBenchClient(o.clientFile)
	if err != nil {
		return nil, err
	}
	client := loadgen.NewHTTPClient()
	const number = "+34600000001"
	tokens := make(chan string, o.tokens)
	mint := &recorder{name: "mint"}
	var minted atomic.Int64
	fmt.Fprintf(progress, "bench: minting %d tokens at %s/sandbox/tokens\n", o.tokens, c.Issuer)
	t0 := time.Now()
	var wg sync.WaitGroup
	for range o.users {
		wg.Go(func() {
			for ctx.Err() == nil && minted.Add(1) <= int64(o.tokens) {
				t1 := time.Now()
				tok, err := mintToken(ctx, client, c.Issuer, number)
				mint.add(time.Since(t1), err)
				if err == nil {
					tokens <- tok
				}
			}
		})
	}
	wg.Wait()
	close(tokens)
	mr := mint.result(time.Since(t0))
	if mr.Errors > 0 {
		return nil, fmt.Errorf("bench: minting tokens: %d errors, first: %s", mr.Errors, mr.FirstError)
	}
	flow := &loadgen.Flow{Client: c, HTTP: client}
	rec := &recorder{name: "verify"}
	elapsed, use := measure(ctx, o.duration, cpu, progress, func(ctx context.Context) {
		var wg sync.WaitGroup
		for range o.users {
			wg.Go(func() {
				for tok := range tokens {
					if ctx.Err() != nil {
						return
					}
					t0 := time.Now()
					a, err := flow.Verify(ctx, tok, number)
					if ctx.Err() != nil {
						return
					}
					if err == nil && (a.Status != http.StatusOK || a.Verified == nil || !*a.Verified) {
						err = fmt.Errorf("verify: status %d code %s, want 200 and true", a.Status, a.Code)
					}
					rec.add(time.Since(t0), err)
				}
			})
		}
		wg.Wait()
	}, rec)
	r := withCPU(rec.result(elapsed), use, cpu)
	if left := len(tokens); left == 0 && elapsed < o.duration {
		r.Notes = append(r.Notes, fmt.Sprintf("every minted token was spent after %.1fs: raise --tokens for a longer run", elapsed.Seconds()))
	}
	mr.Name = "mint (setup)"
	return []benchResult{mr, r}, nil
}

func mintToken(ctx context.Context, c *http.Client, issuer, number string) (string, error) {
	body := fmt.Sprintf(`{"phoneNumber":%q,"scope":"number-verification:verify","expiresIn":300}`, number)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, issuer+"/sandbox/tokens", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return "", fmt.Errorf("POST /sandbox/tokens: status %d: %s (is the target a sandbox?)", resp.StatusCode, bytes.TrimSpace(b))
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		return "", fmt.Errorf("POST /sandbox/tokens: no access_token (%v)", err)
	}
	return out.AccessToken, nil
}

// benchAccounting builds the RADIUS load.
func benchAccounting(o benchOpts, rec *recorder) (*loadgen.Accounting, error) {
	if o.secret == "" {
		return nil, errors.New("bench: --secret is required (the RADIUS client's shared secret)")
	}
	gnet, err := netip.ParsePrefix(o.gatewayNet)
	if err != nil {
		return nil, fmt.Errorf("bench: --gateway-net: %w", err)
	}
	snet, err := netip.ParsePrefix(o.subNet)
	if err != nil || !snet.Addr().Is4() {
		return nil, fmt.Errorf("bench: --subscriber-net %q: want an IPv4 CIDR", o.subNet)
	}
	var gws []*loadgen.Gateway
	a := gnet.Masked().Addr()
	for range o.gateways {
		a = a.Next()
		if !gnet.Contains(a) {
			return nil, fmt.Errorf("bench: --gateway-net %s holds fewer than %d gateways", gnet, o.gateways)
		}
		gws = append(gws, &loadgen.Gateway{Server: o.radiusAddr, Secret: []byte(o.secret), Source: a, Timeout: 2 * time.Second})
	}
	var subs []loadgen.Subscriber
	s := snet.Masked().Addr()
	for i := range o.subscribers {
		s = s.Next()
		if !snet.Contains(s) {
			return nil, fmt.Errorf("bench: --subscriber-net %s holds fewer than %d subscribers", snet, o.subscribers)
		}
		subs = append(subs, loadgen.Subscriber{Addr: s, MSISDN: fmt.Sprintf("+34699%07d", i)})
	}
	return &loadgen.Accounting{Gateways: gws, Subscribers: subs, Interims: o.interims, Rate: o.radiusRate,
		SessionPrefix: fmt.Sprintf("bench%d-", time.Now().Unix()),
		Observe: func(_ loadgen.Status, rtt time.Duration, acked bool) {
			var err error
			if !acked {
				err = errors.New("no Accounting-Response within the timeout")
			}
			rec.add(rtt, err)
		}}, nil
}

func benchRadiusMode(ctx context.Context, o benchOpts, cpu *cpuMeter, progress io.Writer) ([]benchResult, error) {
	rec := &recorder{name: "radius"}
	acc, err := benchAccounting(o, rec)
	if err != nil {
		return nil, err
	}
	var rep loadgen.AccountingReport
	var runErr error
	elapsed, use := measure(ctx, o.duration, cpu, progress, func(ctx context.Context) { rep, runErr = acc.Run(ctx) }, rec)
	if runErr != nil {
		return nil, fmt.Errorf("bench: radius: %w", runErr)
	}
	r := withCPU(rec.result(elapsed), use, cpu)
	r.Notes = append(r.Notes, fmt.Sprintf("%d gateways (one request in flight each), %d subscribers; an error is a request with no answer within 2 s", o.gateways, o.subscribers))
	if err := checkSessions(ctx, o, rep, &r); err != nil {
		return nil, err
	}
	return []benchResult{r}, nil
}

// checkSessions compares every subscriber's stored session with what the
// server acknowledged (with --config).
func checkSessions(ctx context.Context, o benchOpts, rep loadgen.AccountingReport, r *benchResult) error {
	if o.configPath == "" {
		r.Notes = append(r.Notes, "sessions not checked (give --config to check lost and misapplied updates)")
		return nil
	}
	cfg, err := config.Load(o.configPath)
	if err != nil {
		return fmt.Errorf("bench: --config: %w", err)
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer st.Close()
	for _, s := range rep.Subscribers {
		sess, err := st.SessionFor(ctx, s.Addr, time.Time{})
		found := err == nil
		if err != nil && !errors.Is(err, nv.ErrNotFound) {
			return fmt.Errorf("bench: check %s: %w", s.Addr, err)
		}
		r.Checked++
		if s.Allows(found, string(sess.MSISDN), sess.SessionID) {
			continue
		}
		if !found {
			r.Lost++
		} else {
			r.Misapplied++
		}
	}
	return nil
}

func benchMixedMode(ctx context.Context, o benchOpts, cpu *cpuMeter, progress io.Writer) ([]benchResult, error) {
	frec := &recorder{name: "mixed flow"}
	rrec := &recorder{name: "mixed radius"}
	fl, err := benchFlows(ctx, o, frec, o.flowRate)
	if err != nil {
		return nil, err
	}
	acc, err := benchAccounting(o, rrec)
	if err != nil {
		return nil, err
	}
	var rep loadgen.AccountingReport
	var runErr error
	elapsed, use := measure(ctx, o.duration, cpu, progress, func(ctx context.Context) {
		var wg sync.WaitGroup
		wg.Go(func() { fl.Run(ctx) })
		wg.Go(func() { rep, runErr = acc.Run(ctx) })
		wg.Wait()
	}, frec, rrec)
	if runErr != nil {
		return nil, fmt.Errorf("bench: radius: %w", runErr)
	}
	f := rrec.result(elapsed)
	fr := frec.result(elapsed)
	if use.server >= 0 {
		f.CPUSource, fr.CPUSource = cpu.source+" (both loads together, per op of either)", cpu.source+" (both loads together, per op of either)"
		per := use.server * 1000 / float64(max(fr.Ops+f.Ops, 1))
		f.CPUPerOpms, fr.CPUPerOpms = per, per
	}
	if use.bench >= 0 { // likewise both loads together, per op of either
		per := use.bench * 1000 / float64(max(fr.Ops+f.Ops, 1))
		f.BenchCPUPerOpms, fr.BenchCPUPerOpms = per, per
	}
	if err := checkSessions(ctx, o, rep, &f); err != nil {
		return nil, err
	}
	return []benchResult{fr, f}, nil
}

// cpuMeter reads a server's CPU time: /proc/PID/stat, or the admin
// listener's process_cpu_seconds_total.
type cpuMeter struct {
	pid    int
	admin  string
	source string
}

func newCPUMeter(pid int, admin string) *cpuMeter {
	m := &cpuMeter{pid: pid, admin: strings.TrimRight(admin, "/")}
	if pid <= 0 && admin != "" {
		// The server on this machine: find its PID from the admin
		// listener's process metrics (its start time), so its CPU is read
		// from /proc in clock ticks rather than the metric's rounding.
		if p := pidFromAdmin(m.admin); p > 0 {
			m.pid = p
			m.source = fmt.Sprintf("/proc/%d/stat (PID found from %s/metrics process_start_time_seconds)", p, m.admin)
			return m
		}
	}
	switch {
	case m.pid > 0:
		m.source = fmt.Sprintf("/proc/%d/stat", m.pid)
	case admin != "":
		m.source = m.admin + "/metrics process_cpu_seconds_total"
	}
	return m
}

// pidFromAdmin finds the local process whose start time is the
// process_start_time_seconds the admin listener reports (0 when none, or
// more than one, matches: the server may run on another machine).
func pidFromAdmin(admin string) int {
	start := metricValue(admin, "process_start_time_seconds")
	if start <= 0 {
		return 0
	}
	bt, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	var boot float64
	for _, l := range strings.Split(string(bt), "\n") {
		if v, ok := strings.CutPrefix(l, "btime "); ok {
			boot, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	entries, err := os.ReadDir("/proc")
	if err != nil || boot == 0 {
		return 0
	}
	found := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 20 {
			continue
		}
		ticks, err := strconv.ParseFloat(f[19], 64) // starttime, field 22
		if err != nil {
			continue
		}
		// Within a second: the metric has the precision of the boot time.
		if math.Abs(boot+ticks/clockTicks-start) < 1 {
			if found != 0 {
				return 0 // ambiguous
			}
			found = pid
		}
	}
	return found
}

// metricValue reads one unlabelled metric from the admin listener (-1 when
// it cannot).
func metricValue(admin, name string) float64 {
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return f
			}
		}
	}
	return -1
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times (100 on
// Linux for every architecture Go supports).
const clockTicks = 100

// seconds returns the server's user+system CPU seconds, or -1 when unknown.
func (m *cpuMeter) seconds() float64 {
	switch {
	case m.pid > 0:
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", m.pid))
		if err != nil {
			return -1
		}
		// The command name (field 2) may hold spaces; fields after its
		// closing parenthesis are fixed: utime is field 14, stime 15.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			return -1
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			return -1
		}
		ut, err1 := strconv.ParseFloat(f[11], 64)
		st, err2 := strconv.ParseFloat(f[12], 64)
		if err1 != nil || err2 != nil {
			return -1
		}
		return (ut + st) / clockTicks
	case m.admin != "":
		return metricValue(m.admin, "process_cpu_seconds_total")
	}
	return -1
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func numCPU() int { return runtime.NumCPU() }

// benchClientID is the client `bench client` onboards.
const benchClientID = "numbergate-bench"

// benchClient onboards a client for the load tool into a serve
// configuration's store (a fresh ES256 key; every scope; the one purpose
// the flows use) and writes its credentials in sandbox-client.json's format.
func benchClient(ctx context.Context, args []string, stdout io.Writer) error {
	fs := cmdline.New("bench client", "--config FILE --out FILE", stdout)
	path := fs.String("config", "", "the server's configuration `FILE`")
	out := fs.String("out", "bench-client.json", "credentials `FILE` to write (0600)")
	if _, err := fs.Parse(args, 0); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("bench client: --config is required")
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return fmt.Errorf("bench client: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	priv := jose.JSONWebKey{Key: key, KeyID: "bench-" + rand.Text()[:10], Algorithm: string(jose.ES256), Use: "sig"}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{priv.Public()}})
	if err != nil {
		return err
	}
	privJSON, err := priv.MarshalJSON()
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("bench client: %w", err)
	}
	defer st.Close()
	const redirect = "http://127.0.0.1:9999/callback"
	err = st.PutClient(ctx, nv.Client{
		ID: benchClientID, RedirectURIs: []string{redirect}, JWKS: jwks,
		Scopes:   slices.Clone(nv.Scopes),
		Purposes: []string{"dpv:FraudPreventionAndDetection"}, RequirePKCE: true, CreatedAt: time.Now().UTC(),
	})
	if err != nil {
		return fmt.Errorf("bench client: %w", err)
	}
	creds, err := json.MarshalIndent(sandbox.Credentials{Issuer: cfg.Issuer, ClientID: benchClientID, RedirectURI: redirect, PrivateJWK: privJSON}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, append(creds, '\n'), 0o600); err != nil {
		return fmt.Errorf("bench client: %w", err)
	}
	fmt.Fprintf(stdout, "client %s onboarded in %s's store; credentials in %s\n", benchClientID, *path, *out)
	return nil
}
