package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/postgres/pgtest"
	"github.com/numbergate/numbergate/internal/testlog"
)

// clusterIssuer is the one issuer every node of a test cluster serves, as
// behind a load balancer; the test's HTTP clients pick the node by dialing
// its address whatever the URL says.
const clusterIssuer = "http://nv.cluster.test"

// clusterNode is one `numbergate serve` of a cluster.
type clusterNode struct {
	addr    string // public listener
	admin   string // admin base URL
	cfgPath string
	stop    func()
	logs    *testlog.Buffer
}

// startNodeOn runs the real serve path on the caller's public listener,
// with the given issuer and a PostgreSQL store at dsn. extra is appended to
// the YAML; ls carries the node's RADIUS and CGNAT sockets.
func startNodeOn(t testing.TB, dsn, issuer, extra string, pub net.Listener, ls serveListeners) *clusterNode {
	t.Helper()
	dir := t.TempDir()
	adm, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "numbergate.yaml")
	yaml := fmt.Sprintf("listen: %s\nissuer: %s\nadmin_listen: %s\nstore:\n  driver: postgres\n  dsn: %q\n%s",
		pub.Addr(), issuer, adm.Addr(), dsn, extra)
	n := &clusterNode{addr: pub.Addr().String(), admin: "http://" + adm.Addr().String(), cfgPath: cfgPath}
	n.logs, n.stop = runServeFile(t, cfgPath, yaml, serveListeners{public: pub, admin: adm, radius: ls.radius, cgnat: ls.cgnat})
	return n
}

// nodeClient is an HTTP client that sends every request to node (whatever
// the URL's host), from source address src when set.
func nodeClient(node, src string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	return &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, node)
			},
			DisableKeepAlives: src != "",
		},
		CheckRedirect: noRedirect,
		Timeout:       answerWait,
	}
}

// onboardCluster registers a client with the CLI (on the shared store) and
// returns a party talking to node, its device at src.
func onboardCluster(t *testing.T, n *clusterNode, id, src string) *party {
	t.Helper()
	sn := &servedNode{issuer: clusterIssuer, cfgPath: n.cfgPath}
	p := onboard(t, sn, id, src)
	return p.at(n, src)
}

// at returns a copy of p that talks to node n (device from src).
func (p *party) at(n *clusterNode, src string) *party {
	q := *p
	q.device = nodeClient(n.addr, src)
	q.http = nodeClient(n.addr, "")
	return &q
}

// raceBoth runs fa and fb released together and returns their results.
func raceBoth[T any](fa, fb func() T) (T, T) {
	var (
		wg     sync.WaitGroup
		ra, rb T
		start  = make(chan struct{})
	)
	wg.Go(func() { <-start; ra = fa() })
	wg.Go(func() { <-start; rb = fb() })
	close(start)
	wg.Wait()
	return ra, rb
}

// TestClusterPostgres runs two nodes over one PostgreSQL database: a flow
// split across the nodes, single use of codes, tokens and client
// assertions across nodes, revocation seen by both, and network sessions
// learnt on one node resolving on the other.
func TestClusterPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	pcA := udpConn(t)
	pcB := udpConn(t)
	var syslogs []net.PacketConn
	for range 2 {
		spc := udpConn(t)
		syslogs = append(syslogs, spc)
	}
	network := `network:
  static:
    - prefix: 127.0.0.41/32
      msisdn: "+34600000041"
  radius:
    listen: 127.0.0.1:0
    clients:
      - cidr: 127.0.0.0/8
        secret: "s3cret-gw"
    idle_timeout: 1h
  cgnat:
    syslog_listen: 127.0.0.1:0
    senders: [127.0.0.1/32]
limits: # 100 rounds from one device address, faster than serve's default 10/s
  authorize_per_address: "off"
`
	// Both nodes start together: migrations and key creation race.
	var a, b *clusterNode
	var wg sync.WaitGroup
	start := func(pc, spc net.PacketConn) *clusterNode {
		pub, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Error(err)
			return nil
		}
		return startNodeOn(t, dsn, clusterIssuer, network, pub, serveListeners{radius: pc, cgnat: spc})
	}
	wg.Go(func() { a = start(pcA, syslogs[0]) })
	wg.Go(func() { b = start(pcB, syslogs[1]) })
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	pA := onboardCluster(t, a, "app-cluster", "127.0.0.41")
	pB := pA.at(b, "127.0.0.41")

	t.Run("same JWKS on both nodes", func(t *testing.T) {
		get := func(p *party) string {
			resp, err := p.http.Get(clusterIssuer + "/jwks")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return string(body)
		}
		if ja, jb := get(pA), get(pB); ja != jb || ja == "" {
			t.Errorf("JWKS differ:\nA %s\nB %s", ja, jb)
		}
	})

	t.Run("a rotated key is published by both nodes before it signs", func(t *testing.T) {
		var out, errb bytes.Buffer
		if err := run(t.Context(), []string{"keys", "rotate", "--config", a.cfgPath, "--delay", "1h"}, func(string) string { return "" }, &out, &errb); err != nil {
			t.Fatalf("keys rotate: %v\n%s", err, errb.String())
		}
		deadline := time.Now().Add(answerWait)
		for {
			ka, kb := jwksKids(t, pA.http, clusterIssuer), jwksKids(t, pB.http, clusterIssuer)
			if len(ka) == 2 && len(kb) == 2 {
				if ka[0] != kb[0] || ka[1] != kb[1] {
					t.Fatalf("nodes publish different key sets: A %v, B %v", ka, kb)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the rotated key did not reach both JWKS: A %v, B %v", ka, kb)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("authorize on A, token on B, verify on A", func(t *testing.T) {
		verifier, challenge := pkce()
		ar := pA.authorize(url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}})
		if ar.code == "" {
			t.Fatalf("authorize on A: %d %s %s", ar.status, ar.err, ar.body)
		}
		tr := pB.token(ar.code, verifier, pB.assertion(nil))
		if tr.status != 200 {
			t.Fatalf("token on B: %d %s %s", tr.status, tr.Error, tr.Description)
		}
		if r := pA.verify(tr.AccessToken, `{"phoneNumber":"+34600000041"}`); r.status != 200 || r.body["devicePhoneNumberVerified"] != true {
			t.Fatalf("verify on A: %d %v", r.status, r.body)
		}
		if r := pB.verify(tr.AccessToken, `{"phoneNumber":"+34600000041"}`); r.status != 401 {
			t.Fatalf("the same token again on B: %d %v, want 401", r.status, r.body)
		}
	})

	t.Run("100 rounds: one winner per code, token and assertion", func(t *testing.T) {
		authorize := func() (code, verifier string) {
			verifier, challenge := pkce()
			ar := pA.authorize(url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}})
			if ar.code == "" {
				t.Fatalf("authorize: %d %s %s", ar.status, ar.err, ar.body)
			}
			return ar.code, verifier
		}
		for round := range 100 {
			// The same code with the same assertion at both nodes.
			code, verifier := authorize()
			assertion := pA.assertion(nil)
			ta, tb := raceBoth(
				func() tokenResult { return pA.token(code, verifier, assertion) },
				func() tokenResult { return pB.token(code, verifier, assertion) })
			if (ta.status == 200) == (tb.status == 200) {
				t.Fatalf("round %d, same code and assertion: A %d %s, B %d %s; want exactly one 200",
					round, ta.status, ta.Error, tb.status, tb.Error)
			}
			token := ta.AccessToken + tb.AccessToken

			// The same token at both nodes.
			va, vb := raceBoth(
				func() apiResult { return pA.verify(token, `{"phoneNumber":"+34600000041"}`) },
				func() apiResult { return pB.verify(token, `{"phoneNumber":"+34600000041"}`) })
			if (va.status == 200) == (vb.status == 200) || va.status+vb.status != 200+401 {
				t.Fatalf("round %d, same token: A %d, B %d; want one 200 and one 401", round, va.status, vb.status)
			}

			// The same assertion with two codes: one client authentication.
			c1, v1 := authorize()
			c2, v2 := authorize()
			assertion = pA.assertion(nil)
			ta, tb = raceBoth(
				func() tokenResult { return pA.token(c1, v1, assertion) },
				func() tokenResult { return pB.token(c2, v2, assertion) })
			if (ta.status == 200) == (tb.status == 200) {
				t.Fatalf("round %d, same assertion: A %d %s, B %d %s; want exactly one 200", round, ta.status, ta.Error, tb.status, tb.Error)
			}

			// The same code with two assertions: at most one token, and the
			// replay revokes the grant, so no live token is left on either node.
			code, verifier = authorize()
			ta, tb = raceBoth(
				func() tokenResult { return pA.token(code, verifier, pA.assertion(nil)) },
				func() tokenResult { return pB.token(code, verifier, pB.assertion(nil)) })
			if ta.status == 200 && tb.status == 200 {
				t.Fatalf("round %d, same code: both nodes issued a token", round)
			}
			if tok := ta.AccessToken + tb.AccessToken; tok != "" {
				for _, p := range []*party{pA, pB} {
					if r := p.verify(tok, `{"phoneNumber":"+34600000041"}`); r.status != 401 {
						t.Fatalf("round %d: the token of a replayed (revoked) code answered %d %v", round, r.status, r.body)
					}
				}
			}
		}
	})

	t.Run("RADIUS and CGNAT records learnt on A resolve on B", func(t *testing.T) {
		mustStart(t, pcA.LocalAddr().String(), "s3cret-gw", "127.0.0.42", "34600000042", "cluster-1")
		pDev := pA.at(b, "127.0.0.42")
		tr := pDev.flow(scopeRead, "")
		r := pA.call("GET", "/number-verification/v2/device-phone-number", tr.AccessToken, "", nil)
		if r.status != 200 || r.body["devicePhoneNumber"] != "+34600000042" {
			t.Fatalf("device-phone-number after a Start on A and a flow on B: %d %v", r.status, r.body)
		}

		// Behind carrier NAT: the port block logged to A maps the public
		// address and port B sees back to the private address A learnt.
		mustStart(t, pcA.LocalAddr().String(), "s3cret-gw", "127.0.0.43", "34600000043", "cluster-2")
		base := 30000 + rand.IntN(20000)/100*100
		conn, err := net.Dial("udp", syslogs[0].LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		fmt.Fprintf(conn, "<134>1 %s nat1 cgn - - - %s ALLOC private=127.0.0.43 public=127.0.0.44 ports=%d-%d\n",
			now.Format(time.RFC3339), now.Add(-time.Second).Format(time.RFC3339), base, base+49)
		conn.Close()
		deadline := time.Now().Add(answerWait)
		for port := base + 1; ; port++ {
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.44"), Port: port}}
			q := pA.at(b, "")
			q.device = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, b.addr)
			}, DisableKeepAlives: true}, CheckRedirect: noRedirect}
			verifier, challenge := pkce()
			ar := q.authorize(url.Values{"scope": {scopeRead}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}})
			if ar.code != "" {
				tr := q.token(ar.code, verifier, q.assertion(nil))
				r := pA.call("GET", "/number-verification/v2/device-phone-number", tr.AccessToken, "", nil)
				if r.status != 200 || r.body["devicePhoneNumber"] != "+34600000043" {
					t.Fatalf("device-phone-number through CGNAT (block logged on A, flow on B): %d %v", r.status, r.body)
				}
				break
			}
			if time.Now().After(deadline) || port > base+45 {
				t.Fatalf("the port block logged on A never mapped on B: %q %s", ar.err, ar.errDesc)
			}
			time.Sleep(time.Duration(port-base) * 50 * time.Millisecond) // 45 ports span over half a minute
		}
	})
}

// TestMigrateAndCLIPostgres: `numbergate migrate` applies the schema once
// and then finds it up to date; the operator commands work on PostgreSQL.
func TestMigrateAndCLIPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	cfgPath := filepath.Join(t.TempDir(), "numbergate.yaml")
	yaml := fmt.Sprintf("listen: 127.0.0.1:0\nissuer: %s\nstore:\n  driver: postgres\n  dsn: %q\n", clusterIssuer, dsn)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	runCmd := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run(t.Context(), args, func(string) string { return "" }, &out, &errb); err != nil {
			t.Fatalf("numbergate %v: %v\n%s", args, err, errb.String())
		}
		return out.String()
	}
	if out := runCmd("migrate", "--config", cfgPath); !bytes.Contains([]byte(out), []byte("applied versions [1")) {
		t.Errorf("first migrate: %q", out)
	}
	if out := runCmd("migrate", "--config", cfgPath); !bytes.Contains([]byte(out), []byte("up to date")) {
		t.Errorf("second migrate: %q", out)
	}
	sn := &servedNode{issuer: clusterIssuer, cfgPath: cfgPath}
	onboard(t, sn, "app-cli", "")
	if out := runCmd("clients", "list", "--config", cfgPath); !bytes.Contains([]byte(out), []byte("app-cli")) {
		t.Errorf("clients list on postgres: %q", out)
	}
	runCmd("sessions", "list", "--config", cfgPath)
}
