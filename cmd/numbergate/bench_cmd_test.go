package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/numbergate/numbergate/internal/sandbox"
	"github.com/numbergate/numbergate/internal/testnet"
)

// runBenchJSON runs `numbergate bench args... --json` and decodes its report.
func runBenchJSON(t *testing.T, args ...string) benchReport {
	t.Helper()
	var out, errb bytes.Buffer
	args = append([]string{"bench"}, append(args, "--json", "--progress=false")...)
	if err := run(t.Context(), args, os.Getenv, &out, &errb); err != nil {
		t.Fatalf("numbergate %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	var rep benchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out.String())
	}
	return rep
}

func benchRow(t *testing.T, rep benchReport, name string) benchResult {
	t.Helper()
	for _, r := range rep.Results {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("report has no %q row: %+v", name, rep.Results)
	return benchResult{}
}

// TestBenchSandbox: bench flow and verify against the real sandbox, with
// the baseline in the same run: every answer checked, no errors, the
// server's CPU read (in-process here: this test's own /proc entry), the
// generator's own CPU, a ratio to the baseline, and the table form.
func TestBenchSandbox(t *testing.T) {
	dir := t.TempDir()
	startSandbox(t, dir)
	client := filepath.Join(dir, sandbox.CredentialsFile)
	pid := "--pid=" + itoa(os.Getpid())

	rep := runBenchJSON(t, "flow", "--client", client, "--users", "2", "--devices", "4", "--duration", "400ms", "--baseline", "200ms", pid)
	base, flow := benchRow(t, rep, "baseline"), benchRow(t, rep, "flow")
	if base.Ops == 0 || base.Errors != 0 {
		t.Errorf("baseline row %+v", base)
	}
	if flow.Ops == 0 || flow.Errors != 0 || flow.Ratio <= 0 || flow.P99ms <= 0 || flow.CPUSource == "" {
		t.Errorf("flow row %+v", flow)
	}
	// The generator's own CPU: 400 ms of flows (ECDSA assertions, HTTP)
	// take far more than the 10 ms resolution of /proc/self/stat.
	if flow.BenchCPUPerOpms <= 0 || base.BenchCPUPerOpms != 0 {
		t.Errorf("bench CPU ms/op: flow %v, baseline %v (want > 0 and none: the baseline's handler runs in the bench process)", flow.BenchCPUPerOpms, base.BenchCPUPerOpms)
	}

	rep = runBenchJSON(t, "verify", "--client", client, "--users", "2", "--tokens", "40", "--duration", "5s", "--baseline", "0")
	if v := benchRow(t, rep, "verify"); v.Ops != 40 || v.Errors != 0 {
		t.Errorf("verify row %+v, want 40 tokens spent without error", v)
	}

	var out bytes.Buffer
	if err := run(t.Context(), []string{"bench", "baseline", "--duration", "100ms", "--users", "1", "--progress=false"}, os.Getenv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "p99 ms") || !strings.Contains(out.String(), "bench CPU ms/op") || !strings.Contains(out.String(), "load average") {
		t.Errorf("table output:\n%s", out.String())
	}
}

// TestBenchRadius: bench radius against serve's accounting listener, then
// the check of every subscriber's session in the store finds nothing lost
// or misapplied.
func TestBenchRadius(t *testing.T) {
	testnet.RequireLoopbackAliases(t)
	pc := udpConn(t)
	n := startServeWith(t, t.TempDir(), `network:
  radius:
    listen: 127.0.0.1:0
    clients:
      - cidr: 127.0.0.0/8
        secret: "bench-s3cret"
    idle_timeout: 1h
`, serveListeners{radius: pc})
	rep := runBenchJSON(t, "radius", "--radius", pc.LocalAddr().String(), "--secret", "bench-s3cret",
		"--gateway-net", "127.0.88.0/24", "--gateways", "4", "--subscribers", "64", "--duration", "500ms",
		"--baseline", "0", "--config", n.cfgPath, "--admin", n.admin)
	r := benchRow(t, rep, "radius")
	if r.Ops == 0 || r.Checked != 64 || r.Lost != 0 || r.Misapplied != 0 || r.CPUSource == "" {
		t.Errorf("radius row %+v", r)
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }
