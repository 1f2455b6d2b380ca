package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/loadgen"
	"github.com/numbergate/numbergate/internal/postgres/pgtest"
)

// tcpProxy forwards TCP connections to target until cut: then it drops
// every connection it carries and refuses new ones, until restored.
type tcpProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, s) {
			continue
		}
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		go pipe(s, c)
		go pipe(c, s)
	}
}

func (p *tcpProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

// cut drops every connection and refuses new ones.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *tcpProxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// TestPostgresOutage (issue 8 item 7): a node whose PostgreSQL becomes
// unreachable answers that it is unavailable on every edge (API 503
// UNAVAILABLE, /token 503 temporarily_unavailable, /authorize
// temporarily_unavailable, no RADIUS Accounting-Response, /readyz not
// ready) and recovers by itself when the database is back: the token, the
// code and the accounting request that failed all work afterwards.
func TestPostgresOutage(t *testing.T) {
	dsn := pgtest.DSN(t)
	u, host := dsnHost(t, dsn)
	proxy := startProxy(t, host)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := startServeWith(t, t.TempDir(), `store:
  driver: postgres
  dsn: "`+strings.Replace(dsn, u, proxy.addr(), 1)+`"
  statement_timeout: 2s
network:
  radius:
    listen: 127.0.0.1:0
    clients:
      - cidr: 127.0.0.0/8
        secret: "outage-gw"
    idle_timeout: 1h
  static:
    - prefix: 127.0.96.1/32
      msisdn: "+34600096001"
`, serveListeners{radius: pc})
	p := onboard(t, n, "app-outage", "127.0.96.1")
	flow := &loadgen.Flow{Client: loadgen.Client{Issuer: n.issuer, ID: p.clientID, RedirectURI: p.redirect, Key: p.key}}
	dev := &loadgen.Device{MSISDN: "+34600096001", Source: netip.MustParseAddr("127.0.96.1")}
	ctx := context.Background()
	gw := &loadgen.Gateway{Server: pc.LocalAddr().String(), Secret: []byte("outage-gw"),
		Source: netip.MustParseAddr("127.0.96.100"), Timeout: 500 * time.Millisecond}

	if _, err := flow.Run(ctx, dev); err != nil {
		t.Fatalf("flow before the outage: %v", err)
	}
	a1, err := flow.Authorize(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	as1, _, _ := flow.Assertion()
	tok, err := flow.Exchange(ctx, a1.Code, a1.Verifier, as1)
	if err != nil || tok.Status != 200 {
		t.Fatalf("token: %+v %v", tok, err)
	}
	unspent := tok.AccessToken
	a2, err := flow.Authorize(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}

	proxy.cut()
	cutAt := time.Now()

	start := loadgen.Request{Status: loadgen.Start, Addr: netip.MustParseAddr("127.0.97.1"), MSISDN: "+34600097001", SessionID: "outage-1"}
	startPkt, err := gw.Encode(start)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.SendPacket(ctx, startPkt); !errors.Is(err, loadgen.ErrNoAnswer) {
		t.Errorf("RADIUS Start during the outage: %v, want no answer", err)
	}
	if status, body := get(t, n.admin+"/readyz"); status != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage: %d %s, want 503", status, body)
	}
	if v, err := flow.Verify(ctx, unspent, dev.MSISDN); err != nil || v.Status != http.StatusServiceUnavailable || v.Code != "UNAVAILABLE" {
		t.Errorf("verify during the outage: %+v %v, want 503 UNAVAILABLE", v, err)
	}
	as2, _, _ := flow.Assertion()
	if tr, err := flow.Exchange(ctx, a2.Code, a2.Verifier, as2); err != nil || tr.Status != http.StatusServiceUnavailable || tr.Error != "temporarily_unavailable" {
		t.Errorf("token during the outage: %+v %v, want 503 temporarily_unavailable", tr, err)
	}
	// Whether client and redirect_uri are valid cannot be checked without
	// the store: a redirect with the error, or the 503 page.
	_, err = flow.Authorize(ctx, dev)
	var se *loadgen.StepError
	if !errors.As(err, &se) || !(se.Code == "temporarily_unavailable" || se.Status == http.StatusServiceUnavailable) {
		t.Errorf("authorize during the outage: %v, want temporarily_unavailable", err)
	}
	t.Logf("outage answers checked in %s", time.Since(cutAt).Round(time.Millisecond))
	if t.Failed() {
		t.Logf("server log:\n%s", n.logs.String())
	}

	proxy.restore()
	deadline := time.Now().Add(answerWait)
	for {
		status, body := get(t, n.admin+"/readyz")
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d %s %s after the database came back", status, body, answerWait)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v, err := flow.Verify(ctx, unspent, dev.MSISDN); err != nil || v.Status != http.StatusOK || v.Verified == nil || !*v.Verified {
		t.Errorf("the token whose verify failed: %+v %v, want 200 verified", v, err)
	}
	as3, _, _ := flow.Assertion()
	if tr, err := flow.Exchange(ctx, a2.Code, a2.Verifier, as3); err != nil || tr.Status != http.StatusOK {
		t.Errorf("the code whose /token failed: %+v %v, want 200", tr, err)
	}
	// The gateway retransmits (waiting as long as a loaded machine needs).
	gw.Timeout = answerWait
	if err := gw.SendPacket(ctx, startPkt); err != nil {
		t.Fatalf("the unacknowledged Start, retransmitted: %v", err)
	}
	if _, err := flow.Run(ctx, &loadgen.Device{MSISDN: start.MSISDN, Source: start.Addr}); err != nil {
		t.Errorf("flow from the address of the retransmitted Start: %v", err)
	}
}

// dsnHost returns the host:port of a URL DSN as written and as dialed.
func dsnHost(t *testing.T, dsn string) (written, dial string) {
	t.Helper()
	_, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		t.Skip("the outage test needs a URL-form NUMBERGATE_TEST_POSTGRES_DSN")
	}
	hostPart, _, _ := strings.Cut(rest, "/")
	if i := strings.LastIndex(hostPart, "@"); i >= 0 {
		hostPart = hostPart[i+1:]
	}
	dial = hostPart
	if _, _, err := net.SplitHostPort(dial); err != nil {
		dial = net.JoinHostPort(dial, "5432")
	}
	return hostPart, dial
}
