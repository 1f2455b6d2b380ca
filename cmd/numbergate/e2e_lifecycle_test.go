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

// feedGoroutine is the frame of a feed goroutine startFeeds created that
// has not yet entered its Serve.
const feedGoroutine = "main.startFeeds.func"

// runningBackground returns the background functions some other goroutine
// is in (or about to enter).
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
	// The first goroutine of the dump is the caller's own.
	if i := bytes.Index(buf, []byte("\n\ngoroutine ")); i >= 0 {
		buf = buf[i:]
	} else {
		buf = nil
	}
	var found []string
	for _, f := range append(backgroundFrames, feedGoroutine) {
		if bytes.Contains(buf, []byte(f)) {
			found = append(found, f)
		}
	}
	return found
}

// Issue 10 item 5: when start-up fails half-way (here the CGNAT file is
// missing, after the RADIUS feed started), serve stops and waits for what
// it started before it returns and closes the store.
func TestServeStartFailureLeavesNoGoroutine(t *testing.T) {
	if got := runningBackground(); len(got) > 0 {
		t.Skipf("background goroutines of an earlier test still run: %v", got)
	}
	rpc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer rpc.Close()
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
    listen: 127.0.0.1:0
    clients: [{cidr: 127.0.0.1/32, secret: s}]
  cgnat:
    files: [%s]
`, pub.Addr(), pub.Addr(), adm.Addr(), filepath.Join(dir, "data"), filepath.Join(dir, "missing.log"))
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
		public: pub, admin: adm, radius: rpc,
		storeClosing: func() { atClose = runningBackground() },
	})
	if err == nil || !strings.Contains(err.Error(), "network.cgnat.files") {
		t.Fatalf("serve = %v, want the missing CGNAT file", err)
	}
	if len(atClose) > 0 {
		t.Errorf("the store closed while goroutines serve started still ran: %v", atClose)
	}
	// The RADIUS feed that had started owns its socket and closed it.
	rpc.SetReadDeadline(time.Now().Add(time.Second))
	if _, _, err := rpc.ReadFrom(make([]byte, 64)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("the RADIUS socket is still open after serve returned: %v", err)
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
	rpc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	spc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := startServeWith(t, t.TempDir(), `network:
  radius:
    listen: 127.0.0.1:0
    clients: [{cidr: 127.0.0.1/32, secret: s}]
  cgnat:
    syslog_listen: 127.0.0.1:0
    senders: [127.0.0.1/32]
`, serveListeners{radius: rpc, cgnat: spc})
	deadline := time.Now().Add(5 * time.Second)
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
