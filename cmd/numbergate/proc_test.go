package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/numbergate/numbergate/internal/loadgen"
	"github.com/numbergate/numbergate/internal/sqlite"
	"github.com/numbergate/numbergate/internal/testlog"
	"github.com/numbergate/numbergate/internal/testnet"
)

// This file runs `numbergate serve` as a separate process, built from this
// package, for the tests that kill or stop it (crash, graceful stop).

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// buildBinary builds cmd/numbergate once per test binary (with -race when
// the tests run with it, so the build reuses their compiled packages) or
// returns $NUMBERGATE_TEST_BIN when set.
func buildBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("NUMBERGATE_TEST_BIN"); p != "" {
		return p
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "numbergate-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "numbergate")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// freePort returns a loopback port free right now for network ("tcp" or
// "udp"). The node keeps it across restarts, so it is taken below the
// kernel's ephemeral range (32768 and up on Linux): while the node is down
// an outgoing connection or a port-0 listener of a test running beside it
// cannot be handed the same port.
func freePort(t testing.TB, network string) string {
	t.Helper()
	for range 1000 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(20000+mathrand.IntN(12000)))
		if network == "udp" {
			if pc, err := net.ListenPacket("udp", addr); err == nil {
				pc.Close()
				return addr
			}
			continue
		}
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatalf("no free %s port on 127.0.0.1 between 20000 and 32000", network)
	return ""
}

// procNode is a `numbergate serve` process on fixed loopback ports and one
// data directory, which survives its restarts.
type procNode struct {
	t       testing.TB
	bin     string
	dir     string
	cfgPath string
	issuer  string
	admin   string
	radius  string
	client  loadgen.Client
	sqlite  bool // the store is SQLite in dir/data

	cmd  *exec.Cmd
	done chan error
	logs *testlog.Buffer
}

const (
	procSecret   = "crash-gw-secret"
	procClientID = "crash-app"
	procRedirect = "https://app.example/cb"
)

// procDevice i (1..n) is a device the static map identifies: loopback
// source 127.0.<net>.<i> is +34600<net><i>.
func procDevice(net, i int) *loadgen.Device {
	return &loadgen.Device{
		MSISDN: fmt.Sprintf("+34600%03d%03d", net, i),
		Source: netip.AddrFrom4([4]byte{127, 0, byte(net), byte(i)}),
	}
}

// newProcNode writes a config (static map of devices 127.0.<net>.1..n,
// RADIUS accounting from 127.0.0.0/8, rate limits off since the load
// comes from few addresses and one client, then store: a `store:`
// section selecting another store than SQLite in the data directory, or
// "") and onboards a client with the CLI. It does not start the server.
func newProcNode(t testing.TB, net, devices int, store string) *procNode {
	t.Helper()
	testnet.RequireLoopbackAliases(t)
	n := &procNode{t: t, bin: buildBinary(t), dir: t.TempDir(), sqlite: store == ""}
	pub := freePort(t, "tcp")
	n.admin = freePort(t, "tcp")
	n.radius = freePort(t, "udp")
	n.issuer = "http://" + pub
	var static strings.Builder
	for i := 1; i <= devices; i++ {
		d := procDevice(net, i)
		fmt.Fprintf(&static, "    - prefix: %s/32\n      msisdn: %q\n", d.Source, d.MSISDN)
	}
	yaml := fmt.Sprintf(`listen: %s
issuer: %s
admin_listen: %s
data_dir: %s
log_level: warn
limits:
  authorize_per_address: "off"
  token_per_client: "off"
  api_per_client: "off"
network:
  radius:
    listen: %s
    clients:
      - cidr: 127.0.0.0/8
        secret: %q
    idle_timeout: 24h
  static:
%s%s
`, pub, n.issuer, n.admin, filepath.Join(n.dir, "data"), n.radius, procSecret, static.String(), store)
	n.cfgPath = filepath.Join(n.dir, "numbergate.yaml")
	if err := os.WriteFile(n.cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}

	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key := jose.JSONWebKey{Key: k, KeyID: "crash-" + rand.Text()[:8], Algorithm: "ES256", Use: "sig"}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.Public()}})
	jwksPath := filepath.Join(n.dir, "jwks.json")
	if err := os.WriteFile(jwksPath, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	n.cli("clients", "add", "--config", n.cfgPath, "--client-id", procClientID,
		"--redirect-uri", procRedirect, "--jwks", jwksPath,
		"--scope", "openid number-verification:verify number-verification:device-phone-number:read",
		"--purpose", "dpv:FraudPreventionAndDetection", "--require-pkce")
	n.client = loadgen.Client{Issuer: n.issuer, ID: procClientID, RedirectURI: procRedirect, Key: key}
	return n
}

// cli runs the binary with args and returns its stdout.
func (n *procNode) cli(args ...string) string {
	n.t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(n.bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		n.t.Fatalf("numbergate %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// start runs `numbergate serve` and waits until /readyz answers 200; it
// returns how long that took from the process start.
func (n *procNode) start() time.Duration {
	n.t.Helper()
	if n.cmd != nil {
		n.t.Fatal("procNode: already running")
	}
	n.logs = &testlog.Buffer{}
	cmd := exec.Command(n.bin, "serve", "--config", n.cfgPath)
	cmd.Stdout, cmd.Stderr = n.logs, n.logs
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.cmd, n.done = cmd, make(chan error, 1)
	go func() { n.done <- cmd.Wait() }()
	n.t.Cleanup(func() { n.kill() })
	hc := &http.Client{Timeout: time.Second}
	for {
		select {
		case err := <-n.done:
			n.cmd = nil
			n.t.Fatalf("serve exited before ready: %v\n%s", err, n.logs.String())
		default:
		}
		resp, err := hc.Get("http://" + n.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(t0)
			}
		}
		if time.Since(t0) > 60*time.Second {
			n.t.Fatalf("serve not ready after 60 s\n%s", n.logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// kill sends SIGKILL and reaps the process (no-op when not running).
func (n *procNode) kill() {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
	n.cmd = nil
}

// terminate sends SIGTERM and waits for the exit, up to limit (then it
// kills the process and fails the test); it returns the exit error and
// how long the exit took.
func (n *procNode) terminate(limit time.Duration) (time.Duration, error) {
	n.t.Helper()
	t0 := time.Now()
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		n.t.Fatal(err)
	}
	select {
	case err := <-n.done:
		n.cmd = nil
		return time.Since(t0), err
	case <-time.After(limit):
		n.kill()
		n.t.Fatalf("serve did not exit within %s of SIGTERM\n%s", limit, n.logs.String())
		return 0, nil
	}
}

// checkLogs fails on a panic or a data race in the server's output.
func (n *procNode) checkLogs() {
	n.t.Helper()
	l := n.logs.String()
	for _, bad := range []string{"panic:", "DATA RACE", "fatal error:"} {
		if strings.Contains(l, bad) {
			n.t.Fatalf("server output has %q:\n%s", bad, l)
		}
	}
}

// sqliteIntegrity runs PRAGMA integrity_check on the node's SQLite file
// (skipped on another store).
func (n *procNode) sqliteIntegrity() {
	n.t.Helper()
	if !n.sqlite {
		return
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(n.dir, "data", sqlite.FileName)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		n.t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(context.Background(), "PRAGMA integrity_check")
	if err != nil {
		n.t.Fatalf("integrity_check: %v", err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			n.t.Fatal(err)
		}
		got = append(got, s)
	}
	if err := rows.Err(); err != nil {
		n.t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "ok" {
		n.t.Fatalf("integrity_check: %q", got)
	}
}

// sessions reads the network sessions with the CLI: address -> (number,
// session id).
func (n *procNode) sessions() map[netip.Addr][2]string {
	n.t.Helper()
	out := n.cli("sessions", "list", "--config", n.cfgPath, "--show-numbers")
	m := map[netip.Addr][2]string{}
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 4 {
			continue
		}
		p, err := netip.ParsePrefix(f[0])
		if err != nil {
			n.t.Fatalf("sessions list: bad line %q", line)
		}
		m[p.Addr()] = [2]string{f[1], f[3]}
	}
	return m
}
