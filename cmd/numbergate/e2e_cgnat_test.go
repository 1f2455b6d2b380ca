package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"

	"github.com/numbergate/numbergate/internal/testnet"
)

// TestServeCGNAT: the device sits behind carrier NAT. RADIUS knows its
// private address; the NAT's port-block log (a file here, and UDP syslog)
// maps the public address and port the server sees back to it.
func TestServeCGNAT(t *testing.T) {
	testnet.RequireLoopbackAliases(t)
	rpc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	spc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
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

	pkt := radius.New(radius.CodeAccountingRequest, []byte("gw"))
	_ = rfc2866.AcctStatusType_Set(pkt, rfc2866.AcctStatusType_Value_Start)
	_ = rfc2865.FramedIPAddress_Set(pkt, net.ParseIP("127.0.0.51"))
	_ = rfc2865.CallingStationID_SetString(pkt, "34600000051")
	_ = rfc2866.AcctSessionID_SetString(pkt, "C1")
	_ = rfc2865.NASIPAddress_Set(pkt, net.ParseIP("127.0.0.1"))
	ctx, cancel := context.WithTimeout(context.Background(), answerWait)
	defer cancel()
	if _, err := radius.Exchange(ctx, pkt, rpc.LocalAddr().String()); err != nil {
		t.Fatalf("RADIUS Start: %v", err)
	}

	from := func(port int) authzResult {
		_, c := pkce()
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.52"), Port: port}}
		q := *p
		q.device = &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}, CheckRedirect: noRedirect}
		return q.authorize(url.Values{"code_challenge": {c}, "code_challenge_method": {"S256"}})
	}
	if a := from(base + 7); a.code == "" {
		t.Fatalf("public address and port inside the allocation: %q %s", a.err, a.errDesc)
	}
	if a := from(base + 60); a.err != "access_denied" {
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
	for i := 8; ; i++ {
		if i > 45 {
			t.Fatalf("out of ports in the block; metrics:\n%s", getBody(t, n.admin+"/metrics"))
		}
		a := from(base + i) // a new port each time: the last one is in TIME_WAIT
		if a.err == "access_denied" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after RELEASE the port still maps: code=%q err=%q\n%s", a.code, a.err, getBody(t, n.admin+"/metrics"))
		}
		time.Sleep(time.Duration(i-7) * 50 * time.Millisecond) // 38 ports span over half a minute
	}
}

// TestServeCGNATDropsOtherSenders (issue 6 item 4): a syslog datagram from
// outside network.cgnat.senders forges nothing and is counted in /metrics.
func TestServeCGNATDropsOtherSenders(t *testing.T) {
	testnet.RequireLoopbackAliases(t)
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
    clients:
      - cidr: 127.0.0.1/32
        secret: "gw"
  cgnat:
    syslog_listen: 127.0.0.1:0
    senders: [127.0.0.1/32]
`, serveListeners{radius: rpc, cgnat: spc})
	p := onboard(t, n, "app-cs", "")

	pkt := radius.New(radius.CodeAccountingRequest, []byte("gw"))
	_ = rfc2866.AcctStatusType_Set(pkt, rfc2866.AcctStatusType_Value_Start)
	_ = rfc2865.FramedIPAddress_Set(pkt, net.ParseIP("127.0.0.61"))
	_ = rfc2865.CallingStationID_SetString(pkt, "34600000061")
	_ = rfc2866.AcctSessionID_SetString(pkt, "C61")
	ctx, cancel := context.WithTimeout(context.Background(), answerWait)
	defer cancel()
	if _, err := radius.Exchange(ctx, pkt, rpc.LocalAddr().String()); err != nil {
		t.Fatalf("RADIUS Start: %v", err)
	}

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
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.62"), Port: base + 7}}
	q := *p
	q.device = &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}, CheckRedirect: noRedirect}
	if a := q.authorize(url.Values{"code_challenge": {c}, "code_challenge_method": {"S256"}}); a.err != "access_denied" {
		t.Fatalf("a forged allocation identified the attacker as the victim: code=%q err=%q", a.code, a.err)
	}
}
