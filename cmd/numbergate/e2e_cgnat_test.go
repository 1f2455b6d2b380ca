package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/testnet"
)

// TestServeCGNAT: the device sits behind carrier NAT. RADIUS knows its
// private address; the NAT's port-block log (a file here, and UDP syslog)
// maps the public address and port the server sees back to it.
func TestServeCGNAT(t *testing.T) {
	testnet.RequireLoopbackAliases(t)
	rpc := udpConn(t)
	spc := udpConn(t)
	dir := t.TempDir()
	base := 20000 + rand.IntN(20000)/100*100
	now := time.Now().UTC()
	logFile := filepath.Join(dir, "alloc.log")
	lines := fmt.Sprintf("%s ALLOC private=127.0.0.51 public=127.0.0.52 ports=%d-%d\nthis line is garbage\n",
		now.Add(-time.Minute).Format(time.RFC3339), base, base+49)
	if err := os.WriteFile(logFile, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startServeWith(t, dir, fmt.Sprintf(`network:
  radius:
    listen: 127.0.0.1:0
    clients:
      - cidr: 127.0.0.0/8
        secret: "gw"
  cgnat:
    syslog_listen: 127.0.0.1:0
    senders: [127.0.0.1/32]
    files: [%s]
`, logFile), serveListeners{radius: rpc, cgnat: spc})
	p := onboard(t, n, "app-c", "")

	mustStart(t, rpc.LocalAddr().String(), "gw", "127.0.0.51", "34600000051", "C1")

	inside := &localPorts{ip: "127.0.0.52", next: base, last: base + 49}
	outside := &localPorts{ip: "127.0.0.52", next: base + 50, last: base + 99}
	from := func(ports *localPorts) authzResult {
		_, c := pkce()
		q := *p
		q.device = ports.client()
		return q.authorize(url.Values{"code_challenge": {c}, "code_challenge_method": {"S256"}})
	}
	if a := from(inside); a.code == "" {
		t.Fatalf("public address and port inside the allocation: %q %s", a.err, a.errDesc)
	}
	if a := from(outside); a.err != "access_denied" {
		t.Fatalf("a port outside the block: %q, want access_denied", a.err)
	}

	// A RELEASE over UDP syslog ends the mapping.
	conn, err := net.Dial("udp", spc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "<134>1 %s nat1 cgn - - - %s RELEASE private=127.0.0.51 public=127.0.0.52 ports=%d-%d\n",
		time.Now().UTC().Format(time.RFC3339), time.Now().UTC().Add(-time.Second).Format(time.RFC3339), base, base+49)
	conn.Close()
	deadline := time.Now().Add(answerWait)
	for i := 1; ; i++ {
		if inside.left() < 2 {
			t.Fatalf("out of ports in the block; metrics:\n%s", getBody(t, n.admin+"/metrics"))
		}
		a := from(inside) // a new port each time: the last one is in TIME_WAIT
		if a.err == "access_denied" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after RELEASE the port still maps: code=%q err=%q\n%s", a.code, a.err, getBody(t, n.admin+"/metrics"))
		}
		time.Sleep(time.Duration(i) * 50 * time.Millisecond) // 40 ports span over half a minute
	}
}

// TestServeCGNATDropsOtherSenders (issue 6 item 4): a syslog datagram from
// outside network.cgnat.senders forges nothing and is counted in /metrics.
func TestServeCGNATDropsOtherSenders(t *testing.T) {
	testnet.RequireLoopbackAliases(t)
	rpc := udpConn(t)
	spc := udpConn(t)
	n := startServeWith(t, t.TempDir(), `network:
  radius:
    listen: 127.0.0.1:0
    clients:
      - cidr: 127.0.0.1/32
        secret: "gw"
  cgnat:
    syslog_listen: 127.0.0.1:0
    senders: [127.0.0.1/32]
`, serveListeners{radius: rpc, cgnat: spc})
	p := onboard(t, n, "app-cs", "")

	mustStart(t, rpc.LocalAddr().String(), "gw", "127.0.0.61", "34600000061", "C61")

	// The attacker maps its own public address and port to the victim's
	// private address.
	base := 20000 + rand.IntN(20000)/100*100
	conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.62")}, spc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "%s ALLOC private=127.0.0.61 public=127.0.0.62 ports=%d-%d\n",
		time.Now().UTC().Add(-time.Minute).Format(time.RFC3339), base, base+49)
	conn.Close()
	const want = `numbergate_cgnat_datagrams_dropped_total{reason="unknown_sender"} 1`
	for deadline := time.Now().Add(answerWait); !strings.Contains(getBody(t, n.admin+"/metrics"), want); {
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %s:\n%s", want, getBody(t, n.admin+"/metrics"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, c := pkce()
	q := *p
	q.device = (&localPorts{ip: "127.0.0.62", next: base, last: base + 49}).client()
	if a := q.authorize(url.Values{"code_challenge": {c}, "code_challenge_method": {"S256"}}); a.err != "access_denied" {
		t.Fatalf("a forged allocation identified the attacker as the victim: code=%q err=%q", a.code, a.err)
	}
}

// localPorts dials from ip, from local ports next..last in turn (each
// port once, so none is reused while in TIME_WAIT). A port another socket
// holds (EADDRINUSE at bind, EADDRNOTAVAIL at connect: a parallel test, a
// connection of this one not yet gone) is skipped for the next one, so a
// test that needs its device at a known port inside a CGNAT block never
// fails because one port of the block is busy.
type localPorts struct {
	ip         string
	mu         sync.Mutex
	next, last int
}

func (l *localPorts) left() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last - l.next + 1
}

func (l *localPorts) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	for {
		l.mu.Lock()
		port := l.next
		l.next++
		l.mu.Unlock()
		if port > l.last {
			return nil, fmt.Errorf("no free local port on %s up to %d", l.ip, l.last)
		}
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(l.ip), Port: port}}
		c, err := d.DialContext(ctx, network, addr)
		if errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EADDRNOTAVAIL) {
			continue
		}
		return c, err
	}
}

// client is a device's HTTP client dialing from l's ports, one new
// connection per request.
func (l *localPorts) client() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: l.dial, DisableKeepAlives: true}, CheckRedirect: noRedirect}
}

// TestLocalPortsSkipsBusyPort: a port of the block another socket holds
// is skipped, not an error (what made TestServeCGNATDropsOtherSenders
// fail with "bind: address already in use").
func TestLocalPortsSkipsBusyPort(t *testing.T) {
	testnet.RequireLoopbackAliases(t)
	srv, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	busy, err := net.Listen("tcp", "127.0.0.63:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	l := &localPorts{ip: "127.0.0.63", next: port, last: port + 1}
	c, err := l.dial(context.Background(), "tcp", srv.Addr().String())
	if err != nil {
		t.Skipf("port %d is busy too: %v", port+1, err)
	}
	defer c.Close()
	if got := c.LocalAddr().(*net.TCPAddr).Port; got != port+1 {
		t.Errorf("dialed from port %d, want %d (the next after the busy one)", got, port+1)
	}
}
