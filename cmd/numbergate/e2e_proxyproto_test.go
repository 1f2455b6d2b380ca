package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/numbergate/numbergate/internal/testnet"
)

// proxyClient is an HTTP client whose every connection comes from src
// (a loopback address, "" for the default) and, when version is 1 or 2,
// opens with a PROXY header carrying client as the source address, as a
// load balancer in front of numbergate sends it.
func proxyClient(src string, version byte, client *net.TCPAddr) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil || version == 0 {
			return c, err
		}
		h := proxyproto.HeaderProxyFromAddrs(version, client, c.RemoteAddr())
		if _, err := h.WriteTo(c); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	return &http.Client{
		Transport:     &http.Transport{DialContext: dial, DisableKeepAlives: true},
		CheckRedirect: noRedirect,
		Timeout:       10 * time.Second,
	}
}

// TestServeProxyProtocolCGNAT: a device behind carrier NAT reaches
// numbergate through a load balancer that speaks the PROXY protocol. The
// header's public address and port, matched against the NAT's allocation
// and the RADIUS session, identify it; the same connection without the
// header is refused; a peer not listed may not send one.
func TestServeProxyProtocolCGNAT(t *testing.T) {
	rpc := udpConn(t)
	dir := t.TempDir()
	logFile := filepath.Join(dir, "alloc.log")
	alloc := fmt.Sprintf("%s ALLOC private=100.64.0.5 public=203.0.113.7 ports=1024-2047\n",
		time.Now().UTC().Add(-time.Minute).Format(time.RFC3339))
	if err := os.WriteFile(logFile, []byte(alloc), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startServeWith(t, dir, fmt.Sprintf(`proxy_protocol:
  trusted: [127.0.0.1/32]   # the load balancer
network:
  radius:
    listen: 127.0.0.1:0
    clients:
      - cidr: 127.0.0.1/32
        secret: "gw"
  cgnat:
    files: [%s]
`, logFile), serveListeners{radius: rpc})

	mustStart(t, rpc.LocalAddr().String(), "gw", "100.64.0.5", "34600000705", "PP1")

	p := onboard(t, n, "app-pp", "")
	// The app's backend also comes through the load balancer.
	p.http = proxyClient("", 2, &net.TCPAddr{IP: net.ParseIP("198.51.100.20"), Port: 40000})

	for _, version := range []byte{1, 2} {
		t.Run(fmt.Sprintf("v%d header with the allocated address and port: identified", version), func(t *testing.T) {
			p := *p
			p.t = t
			p.device = proxyClient("", version, &net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 1030 + int(version)})
			tr := p.flow(scopeRead, "")
			r := p.call("GET", "/number-verification/v2/device-phone-number", tr.AccessToken, "", nil)
			if r.status != 200 || r.body["devicePhoneNumber"] != "+34600000705" {
				t.Fatalf("device-phone-number: %d %v", r.status, r.body)
			}
		})
	}

	t.Run("a port outside the allocation: access_denied", func(t *testing.T) {
		p := *p
		p.t = t
		p.device = proxyClient("", 1, &net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 3000})
		_, c := pkce()
		if a := p.authorize(url.Values{"scope": {scopeRead}, "code_challenge": {c}, "code_challenge_method": {"S256"}}); a.err != "access_denied" {
			t.Fatalf("got %q (code %q), want access_denied", a.err, a.code)
		}
	})

	t.Run("the load balancer without a header: refused", func(t *testing.T) {
		c := proxyClient("", 0, nil)
		resp, err := c.Get(n.issuer + "/.well-known/openid-configuration")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("a listed peer without a PROXY header was served: %d", resp.StatusCode)
		}
		waitLog(t, n.logs, "sent no PROXY header")
	})

	t.Run("a peer not listed", func(t *testing.T) {
		testnet.RequireLoopbackAliases(t)
		with := proxyClient("127.0.0.72", 2, &net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 1040})
		if resp, err := with.Get(n.issuer + "/.well-known/openid-configuration"); err == nil {
			resp.Body.Close()
			t.Fatalf("a PROXY header from a peer not listed was accepted: %d", resp.StatusCode)
		}
		without := proxyClient("127.0.0.72", 0, nil)
		resp, err := without.Get(n.issuer + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatalf("a direct connection from a peer not listed: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("discovery: %d", resp.StatusCode)
		}
	})
}
