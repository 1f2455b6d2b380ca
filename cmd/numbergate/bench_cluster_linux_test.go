package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/numbergate/numbergate/internal/loadgen"
	"github.com/numbergate/numbergate/internal/postgres/pgtest"
)

// listenShared binds a TCP listener with SO_REUSEPORT, so that several
// nodes listen on one address and the kernel spreads new connections
// across them: a load balancer that keeps the device's source address.
func listenShared(tb testing.TB, addr string) net.Listener {
	tb.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	return ln
}

// benchCluster starts two nodes over one PostgreSQL schema sharing one
// public address, each with its own RADIUS socket, limits off, and a client
// onboarded; the devices 127.0.98.x map to one number through the static
// map.
func benchCluster(b *testing.B) (flow *loadgen.Flow, radiusAddrs []string, nodes []*clusterNode) {
	dsn := pgtest.DSN(b)
	first := listenShared(b, "127.0.0.1:0")
	second := listenShared(b, first.Addr().String())
	issuer := "http://" + first.Addr().String()
	extra := `limits: {authorize_per_address: "off", token_per_client: "off", api_per_client: "off"}
network:
  static:
    - prefix: 127.0.98.0/24
      msisdn: "+34600098000"
  radius:
    listen: 127.0.0.1:0
    clients:
      - cidr: 127.0.0.0/8
        secret: "bench-gw"
    idle_timeout: 1h
`
	for _, pub := range []net.Listener{first, second} {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		radiusAddrs = append(radiusAddrs, pc.LocalAddr().String())
		nodes = append(nodes, startNodeOn(b, dsn, issuer, extra, pub, serveListeners{radius: pc}))
	}
	key := newTestKey(b)
	pub, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.Public()}})
	jwksPath := filepath.Join(b.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksPath, pub, 0o600); err != nil {
		b.Fatal(err)
	}
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"clients", "add", "--config", nodes[0].cfgPath, "--client-id", "bench-app",
		"--redirect-uri", "https://app.example/cb", "--jwks", jwksPath,
		"--scope", "openid number-verification:verify", "--purpose", "dpv:FraudPreventionAndDetection"},
		func(string) string { return "" }, &out, &errb)
	if err != nil {
		b.Fatalf("clients add: %v\n%s", err, errb.String())
	}
	flow = &loadgen.Flow{Client: loadgen.Client{Issuer: issuer, ID: "bench-app", RedirectURI: "https://app.example/cb", Key: key}}
	return flow, radiusAddrs, nodes
}

// tokensIssued reads numbergate_tokens_issued_total from a node's metrics.
func tokensIssued(n *clusterNode) string {
	resp, err := http.Get(n.admin + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "numbergate_tokens_issued_total ") {
			return strings.TrimPrefix(line, "numbergate_tokens_issued_total ")
		}
	}
	return "?"
}

// BenchmarkClusterFlow measures complete flows (authorize as the device,
// token with a fresh ES256 assertion, verify) against two nodes over one
// PostgreSQL database, the kernel spreading connections across the nodes;
// servers and load generator share this machine.
//
//	NUMBERGATE_TEST_POSTGRES_DSN=... go test -run '^$' -bench ClusterFlow -benchtime 2000x ./cmd/numbergate
func BenchmarkClusterFlow(b *testing.B) {
	flow, _, nodes := benchCluster(b)
	defer func() { b.Logf("tokens issued: node A %s, node B %s", tokensIssued(nodes[0]), tokensIssued(nodes[1])) }()
	var devices []*loadgen.Device
	for i := 1; i <= 64; i++ {
		devices = append(devices, &loadgen.Device{MSISDN: "+34600098000", Source: netip.AddrFrom4([4]byte{127, 0, 98, byte(i)})})
	}
	if _, err := flow.Run(context.Background(), devices[0]); err != nil {
		b.Fatalf("warm-up flow: %v", err)
	}
	for _, users := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("users=%d", users), func(b *testing.B) {
			var (
				mu   sync.Mutex
				lats []time.Duration
				errs []error
			)
			fs := &loadgen.Flows{Flow: flow, Devices: devices, Users: users, Count: b.N,
				OnResult: func(r loadgen.Result, err error) {
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, err)
						return
					}
					lats = append(lats, r.Authorize+r.Token+r.Verify)
				}}
			b.ResetTimer()
			rep, err := fs.Run(context.Background())
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			if rep.Failed > 0 {
				b.Errorf("%d of %d flows failed, first: %v", rep.Failed, rep.Started, errs[0])
			}
			slices.Sort(lats)
			b.ReportMetric(float64(rep.OK)/rep.Elapsed.Seconds(), "flows/s")
			if len(lats) > 0 {
				b.ReportMetric(float64(lats[len(lats)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}

// BenchmarkClusterRADIUS measures RADIUS accounting (Start, 2 Interims,
// Stop per session) from 32 gateways, half sending to each node, one
// request in flight per gateway; every acknowledged request is committed
// in PostgreSQL.
//
//	NUMBERGATE_TEST_POSTGRES_DSN=... go test -run '^$' -bench ClusterRADIUS -benchtime 20000x ./cmd/numbergate
func BenchmarkClusterRADIUS(b *testing.B) {
	_, servers, _ := benchCluster(b)
	var gws []*loadgen.Gateway
	for i := range 32 {
		gws = append(gws, &loadgen.Gateway{Server: servers[i%2], Secret: []byte("bench-gw"),
			Source: netip.AddrFrom4([4]byte{127, 0, 99, byte(i + 1)}), Timeout: 2 * time.Second})
	}
	var subs []loadgen.Subscriber
	for i := range 10000 {
		subs = append(subs, loadgen.Subscriber{Addr: netip.AddrFrom4([4]byte{10, 98, byte(i >> 8), byte(i)}),
			MSISDN: fmt.Sprintf("+3460%07d", i)})
	}
	acct := &loadgen.Accounting{Gateways: gws, Subscribers: subs, Interims: 2, Requests: b.N}
	b.ResetTimer()
	rep, err := acct.Run(context.Background())
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	for _, g := range gws {
		g.Close()
	}
	b.ReportMetric(float64(rep.Acked)/rep.Elapsed.Seconds(), "acked/s")
	b.ReportMetric(float64(rep.NoAnswer), "unanswered")
}

// soReusePort is SO_REUSEPORT on Linux (the syscall package does not name it).
const soReusePort = 0xf
