package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/config"
)

// backgroundFrames are functions of the goroutines serve and sandbox start.
var backgroundFrames = []string{
	"internal/radius.(*Server).Serve",
	"internal/radius.(*Server).expireLoop",
	"internal/cgnat.(*Ingester).Serve",
	"(*app).collectLoop",
}

// feedGoroutine is the frame of a feed goroutine a source's start function
// (startRADIUS, startCGNAT in sources.go) created that has not yet entered
// its Serve.
const feedGoroutine = "main.start"

// runningBackground returns the background functions some other goroutine
// is in (or about to enter).
//
// Only call frames count, matched by the function's full name: a closure
// such as radius.(*Server).Serve.func2 (the context.AfterFunc that sets
// the read deadline, which nobody waits for and which touches no store)
// or a "created by ...Serve" line of a worker that has signalled its
// WaitGroup and is exiting are not the function still running. Matching
// them made the lifecycle tests fail on a loaded machine, where such a
// goroutine can linger for a moment after Serve returned.
func runningBackground() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var found []string
	// The first goroutine of the dump is the caller's own.
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 {
			continue
		}
		for _, line := range strings.Split(g, "\n") {
			fn, ok := frameFunc(line)
			if !ok {
				continue
			}
			for _, f := range backgroundFrames {
				if strings.HasSuffix(fn, f) && !slices.Contains(found, f) {
					found = append(found, f)
				}
			}
			if strings.HasPrefix(fn, feedGoroutine) && strings.Contains(fn, ".func") && !slices.Contains(found, feedGoroutine) {
				found = append(found, feedGoroutine)
			}
		}
	}
	return found
}

// frameFunc returns the function of a call-frame line of a goroutine dump
// ("pkg.(*T).M(0x1, ...)"); header, file and "created by" lines are not
// frames.
func frameFunc(line string) (string, bool) {
	if line == "" || strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "goroutine ") ||
		strings.HasPrefix(line, "created by ") || !strings.HasSuffix(line, ")") {
		return "", false
	}
	i := strings.LastIndexByte(line, '(')
	if i <= 0 {
		return "", false
	}
	return line[:i], true
}

// Issue 10 item 5: when start-up fails half-way (here the RADIUS listen
// address is taken, after the CGNAT syslog feed started), serve stops and
// waits for what it started before it returns and closes the store.
func TestServeStartFailureLeavesNoGoroutine(t *testing.T) {
	if got := runningBackground(); len(got) > 0 {
		t.Skipf("background goroutines of an earlier test still run: %v", got)
	}
	spc := udpConn(t)
	defer spc.Close()
	taken := udpConn(t)
	defer taken.Close()
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adm, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "numbergate.yaml")
	yaml := fmt.Sprintf(`listen: %s
issuer: http://%s
admin_listen: %s
data_dir: %s
network:
  radius:
    listen: %s
    clients: [{cidr: 127.0.0.1/32, secret: s}]
  cgnat:
    syslog_listen: 127.0.0.1:0
    senders: [127.0.0.1/32]
`, pub.Addr(), pub.Addr(), adm.Addr(), filepath.Join(dir, "data"), taken.LocalAddr())
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var atClose []string
	err = serve(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, nil)), serveListeners{
		public: pub, admin: adm, cgnat: spc,
		storeClosing: func() { atClose = runningBackground() },
	})
	if err == nil || !strings.Contains(err.Error(), "network.radius.listen") {
		t.Fatalf("serve = %v, want the RADIUS address in use", err)
	}
	if len(atClose) > 0 {
		t.Errorf("the store closed while goroutines serve started still ran: %v", atClose)
	}
	// The CGNAT feed that had started owns its socket and closed it.
	spc.SetReadDeadline(time.Now().Add(time.Second))
	if _, _, err := spc.ReadFrom(make([]byte, 64)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("the CGNAT syslog socket is still open after serve returned: %v", err)
	}
	for _, ln := range []net.Listener{pub, adm} {
		if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
			c.Close()
			t.Errorf("listener %s still accepts after serve returned", ln.Addr())
		}
	}
}

// Issue 10 item 5: a normal stop waits for every feed, the RADIUS workers
// and idle expiry, and the store collector.
func TestServeStopWaitsForBackground(t *testing.T) {
	if got := runningBackground(); len(got) > 0 {
		t.Skipf("background goroutines of an earlier test still run: %v", got)
	}
	rpc := udpConn(t)
	spc := udpConn(t)
	n := startServeWith(t, t.TempDir(), `network:
  radius:
    listen: 127.0.0.1:0
    clients: [{cidr: 127.0.0.1/32, secret: s}]
  cgnat:
    syslog_listen: 127.0.0.1:0
    senders: [127.0.0.1/32]
`, serveListeners{radius: rpc, cgnat: spc})
	deadline := time.Now().Add(time.Minute) // generous: a loaded machine schedules late
	for got := runningBackground(); !allOf(got, backgroundFrames); got = runningBackground() {
		if time.Now().After(deadline) {
			t.Fatalf("running after start: %v, want all of %v", runningBackground(), backgroundFrames)
		}
		time.Sleep(10 * time.Millisecond)
	}
	n.stop()
	if len(n.atStoreClose) > 0 {
		t.Errorf("the store closed while goroutines serve started still ran: %v", n.atStoreClose)
	}
}

func allOf(got, want []string) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

func TestFrameFunc(t *testing.T) {
	for line, want := range map[string]string{
		"github.com/numbergate/numbergate/internal/radius.(*Server).Serve(0xc000123, {0x1, 0x2}, {0x3, 0x4})": "github.com/numbergate/numbergate/internal/radius.(*Server).Serve",
		"github.com/numbergate/numbergate/internal/radius.(*Server).Serve.func2()":                            "github.com/numbergate/numbergate/internal/radius.(*Server).Serve.func2",
		"main.(*app).collectLoop(...)": "main.(*app).collectLoop",
		"created by github.com/numbergate/numbergate/internal/radius.(*Server).Serve in goroutine 7": "",
		"\t/work/internal/radius/server.go:288 +0x1c":                                                "",
		"goroutine 12 [select]:": "",
	} {
		got, ok := frameFunc(line)
		if got != want || ok != (want != "") {
			t.Errorf("frameFunc(%q) = %q, %v; want %q", line, got, ok, want)
		}
	}
	// A closure of Serve is not Serve.
	if fn, _ := frameFunc("x/internal/radius.(*Server).Serve.func2()"); strings.HasSuffix(fn, backgroundFrames[0]) {
		t.Errorf("%q counted as %q", fn, backgroundFrames[0])
	}
}
