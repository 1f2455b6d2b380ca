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
	o := startOutageNode(t, t.TempDir(), `store:
  driver: postgres
  dsn: "`+strings.Replace(dsn, u, proxy.addr(), 1)+`"
  statement_timeout: 2s
`, "outage-gw", 96)
	ctx := context.Background()

	proxy.cut()
	cutAt := time.Now()

	start := loadgen.Request{Status: loadgen.Start, Addr: netip.MustParseAddr("127.0.97.1"), MSISDN: "+34600097001", SessionID: "outage-1"}
	startPkt, err := o.gw.Encode(start)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.gw.SendPacket(ctx, startPkt); !errors.Is(err, loadgen.ErrNoAnswer) {
		t.Errorf("RADIUS Start during the outage: %v, want no answer", err)
	}
	// Whether client and redirect_uri are valid cannot be checked without
	// the store: a redirect with the error, or the 503 page.
	o.checkUnavailable(t, "during the outage", func(se *loadgen.StepError) bool {
		return se.Code == "temporarily_unavailable" || se.Status == http.StatusServiceUnavailable
	})
	t.Logf("outage answers checked in %s", time.Since(cutAt).Round(time.Millisecond))

	proxy.restore()
	o.checkRecovered(t, "the database came back", start, startPkt)
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
