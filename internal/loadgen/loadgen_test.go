package loadgen_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/numbergate/numbergate/internal/api"
	"github.com/numbergate/numbergate/internal/authz"
	"github.com/numbergate/numbergate/internal/loadgen"
	"github.com/numbergate/numbergate/internal/netid"
	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/radius"
	"github.com/numbergate/numbergate/internal/server"
	"github.com/numbergate/numbergate/internal/sqlite"
	"github.com/numbergate/numbergate/internal/testnet"
)

// node is the real server wired in process (as cmd/numbergate's serve
// does): SQLite store, static map and RADIUS sources, authorization
// server, API on a loopback HTTP listener, RADIUS accounting on UDP.
type node struct {
	issuer string
	radius string
	store  *sqlite.Store
	client loadgen.Client
}

const (
	clientID = "loadgen-app"
	redirect = "https://app.example/cb"
)

// static map: 127.0.78.1..8 -> +34600078001..8.
func staticDevice(i int) *loadgen.Device {
	return &loadgen.Device{
		MSISDN: fmt.Sprintf("+34600078%03d", i),
		Source: netip.AddrFrom4([4]byte{127, 0, 78, byte(i)}),
	}
}

func startNode(t *testing.T) *node {
	t.Helper()
	testnet.RequireLoopbackAliases(t)
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var routes []nv.StaticRoute
	for i := 1; i <= 8; i++ {
		d := staticDevice(i)
		n, _ := nv.ParsePhoneNumber(d.MSISDN)
		routes = append(routes, nv.StaticRoute{Prefix: netip.PrefixFrom(d.Source, 32), MSISDN: n})
	}
	if err := st.ReplaceStaticRoutes(ctx, routes); err != nil {
		t.Fatal(err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key := jose.JSONWebKey{Key: k, KeyID: "k-" + rand.Text()[:8], Algorithm: "ES256", Use: "sig"}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.Public()}})
	if err := st.PutClient(ctx, nv.Client{
		ID: clientID, RedirectURIs: []string{redirect}, JWKS: jwks,
		Scopes:   []string{nv.ScopeOpenID, nv.ScopeVerify, nv.ScopeDevicePhoneNumber},
		Purposes: []string{"dpv:FraudPreventionAndDetection"}, RequirePKCE: true, CreatedAt: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	static := netid.NewStatic(st)
	if err := static.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	log := slog.New(slog.DiscardHandler)
	az, err := authz.New(ctx, authz.Config{
		Issuer: issuer, Store: st, Logger: log,
		Resolver:   netid.NewChain(log, netid.NewRADIUS(st, time.Hour), static),
		ClientAddr: func(r *http.Request) netip.AddrPort { return netid.ClientAddr(r, nil) },
	})
	if err != nil {
		t.Fatal(err)
	}
	pub := server.Routes{Authz: az.Routes(), API: api.NewHandler(st, api.Options{Logger: log})}.Handler()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := radius.New(radius.Config{
		Clients:     []radius.Client{{CIDR: netip.MustParsePrefix("127.0.0.0/8"), Secret: []byte("gw-secret")}},
		IdleTimeout: time.Hour,
	}, st, radius.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = server.Serve(ctx, log, 5*time.Second, server.Listener{Name: "public", Listener: ln, Handler: pub})
	}()
	go func() {
		defer wg.Done()
		_ = rs.Serve(ctx, pc)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		pc.Close()
		st.Close()
	})
	return &node{
		issuer: issuer, radius: pc.LocalAddr().String(), store: st,
		client: loadgen.Client{Issuer: issuer, ID: clientID, RedirectURI: redirect, Key: key},
	}
}

func TestFlowRun(t *testing.T) {
	n := startNode(t)
	f := &loadgen.Flow{Client: n.client}
	ctx := context.Background()
	d := staticDevice(1)
	res, err := f.Run(ctx, d)
	if err != nil {
		t.Fatalf("flow: %v", err)
	}
	if !res.Redeemed || !res.Spent || res.Code == "" || res.JTI == "" || res.AccessToken == "" || res.Assertion == "" {
		t.Fatalf("result incomplete: %+v", res)
	}

	// The values reported replay as a crash test replays them: each was
	// spent for good.
	if v, err := f.Verify(ctx, res.AccessToken, d.MSISDN); err != nil || v.Status != http.StatusUnauthorized {
		t.Errorf("spent token again: %+v %v, want 401", v, err)
	}
	a2, _, _ := f.Assertion()
	if tok, err := f.Exchange(ctx, res.Code, res.Verifier, a2); err != nil || tok.Status != http.StatusBadRequest || tok.Error != "invalid_grant" {
		t.Errorf("redeemed code again: %+v %v, want 400 invalid_grant", tok, err)
	}
	a3, err := f.Authorize(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := f.Exchange(ctx, a3.Code, a3.Verifier, res.Assertion); err != nil || tok.Status != http.StatusUnauthorized || tok.Error != "invalid_client" {
		t.Errorf("consumed jti again: %+v %v, want 401 invalid_client", tok, err)
	}
}

func TestFlowWrongAnswerIsAnError(t *testing.T) {
	n := startNode(t)
	f := &loadgen.Flow{Client: n.client}
	ctx := context.Background()

	// The server identifies 127.0.78.2 as +34600078002: a device that
	// expects another number must fail at verify.
	d := staticDevice(2)
	d.MSISDN = "+34600078099"
	res, err := f.Run(ctx, d)
	var se *loadgen.StepError
	if !errors.As(err, &se) || se.Step != loadgen.StepVerify || !res.Spent {
		t.Fatalf("wrong number: %v (%+v), want a verify StepError after a spent token", err, res)
	}

	// An address the static map does not know: access_denied at authorize.
	unknown := &loadgen.Device{MSISDN: "+34600078001", Source: netip.MustParseAddr("127.0.78.200")}
	_, err = f.Run(ctx, unknown)
	if !errors.As(err, &se) || se.Step != loadgen.StepAuthorize || se.Code != "access_denied" {
		t.Fatalf("unknown device: %v, want authorize access_denied", err)
	}

	// A key the server does not know: invalid_client at token, nothing redeemed.
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	bad := &loadgen.Flow{Client: n.client}
	bad.Client.Key = jose.JSONWebKey{Key: k, KeyID: "other", Algorithm: "ES256"}
	res, err = bad.Run(ctx, staticDevice(1))
	if !errors.As(err, &se) || se.Step != loadgen.StepToken || se.Code != "invalid_client" || res.Redeemed {
		t.Fatalf("unknown key: %v (%+v), want token invalid_client", err, res)
	}

	// A server that is not there: a transport error, not an answer.
	gone := &loadgen.Flow{Client: n.client}
	gone.Client.Issuer = "http://127.0.0.1:1"
	_, err = gone.Run(ctx, staticDevice(1))
	if !errors.As(err, &se) || se.Answered() {
		t.Fatalf("no server: %v, want an unanswered StepError", err)
	}
}

func TestFlowsConcurrent(t *testing.T) {
	n := startNode(t)
	var devices []*loadgen.Device
	for i := 1; i <= 8; i++ {
		devices = append(devices, staticDevice(i))
	}
	var mu sync.Mutex
	jtis := map[string]bool{}
	fs := &loadgen.Flows{
		Flow: &loadgen.Flow{Client: n.client}, Devices: devices, Users: 4, Count: 40,
		OnResult: func(r loadgen.Result, err error) {
			if err != nil {
				t.Errorf("flow: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if jtis[r.JTI] {
				t.Errorf("jti %s used twice", r.JTI)
			}
			jtis[r.JTI] = true
		},
	}
	rep, err := fs.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Started != 40 || rep.OK != 40 || rep.Failed != 0 {
		t.Fatalf("report %+v, want 40 ok", rep)
	}
}

func TestAccountingRun(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	var gws []*loadgen.Gateway
	for i := 1; i <= 4; i++ {
		gws = append(gws, &loadgen.Gateway{Server: n.radius, Secret: []byte("gw-secret"), Source: netip.AddrFrom4([4]byte{127, 0, 79, byte(i)})})
	}
	var subs []loadgen.Subscriber
	for i := range 20 {
		subs = append(subs, loadgen.Subscriber{Addr: netip.AddrFrom4([4]byte{10, 79, 0, byte(i + 1)}), MSISDN: fmt.Sprintf("+34600079%03d", i)})
	}
	// 20 subscribers, 2 interims: Start, Interim, Interim, Stop, Start...;
	// 130 requests give each subscriber 6 or 7: all of them in their
	// second session, some after its first Interim, some after its second.
	acc := &loadgen.Accounting{Gateways: gws, Subscribers: subs, Interims: 2, Requests: 130, SessionPrefix: "t"}
	var observed sync.Map
	acc.Observe = func(s loadgen.Status, _ time.Duration, acked bool) {
		if acked {
			observed.Store(s, true)
		}
	}
	rep, err := acc.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent != 130 || rep.Acked != 130 || rep.NoAnswer != 0 {
		t.Fatalf("report sent %d acked %d no answer %d, want 130 acknowledged", rep.Sent, rep.Acked, rep.NoAnswer)
	}
	for _, s := range []loadgen.Status{loadgen.Start, loadgen.Interim, loadgen.Stop} {
		if _, ok := observed.Load(s); !ok {
			t.Errorf("no %s observed", s)
		}
	}
	checkSessions(t, n.store, rep)

	// Stop acknowledged: the session is gone; the report allows only that.
	for _, s := range rep.Subscribers {
		if s.Pending != nil {
			t.Errorf("%s: pending %+v after a clean run", s.Addr, s.Pending)
		}
	}
}

// checkSessions asserts every subscriber's session in the store is the one
// its acknowledged history allows.
func checkSessions(t *testing.T, st *sqlite.Store, rep loadgen.AccountingReport) {
	t.Helper()
	for _, s := range rep.Subscribers {
		sess, err := st.SessionFor(context.Background(), s.Addr, time.Time{})
		found := err == nil
		if err != nil && !errors.Is(err, nv.ErrNotFound) {
			t.Fatal(err)
		}
		if !s.Allows(found, string(sess.MSISDN), sess.SessionID) {
			t.Errorf("%s: found=%v session %q; last acked %+v pending %+v", s.Addr, found, sess.SessionID, s.LastAcked, s.Pending)
		}
		if s.LastAcked != nil && s.LastAcked.Holds() != found {
			t.Errorf("%s: acknowledged %s but found=%v", s.Addr, s.LastAcked.Status, found)
		}
	}
}

func TestAccountingNoServer(t *testing.T) {
	// A port nobody answers: every request is unacknowledged and stays
	// pending, so a crash test allows either its absence or its effect.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	gw := &loadgen.Gateway{Server: addr, Secret: []byte("x"), Timeout: 50 * time.Millisecond, Retries: 1}
	if err := gw.Send(context.Background(), loadgen.Request{Status: loadgen.Start, Addr: netip.MustParseAddr("10.0.0.1"), MSISDN: "+34600000001", SessionID: "a"}); !errors.Is(err, loadgen.ErrNoAnswer) {
		t.Fatalf("send to nobody: %v, want ErrNoAnswer", err)
	}
	acc := &loadgen.Accounting{Gateways: []*loadgen.Gateway{gw}, Subscribers: []loadgen.Subscriber{{Addr: netip.MustParseAddr("10.0.0.2"), MSISDN: "+34600000002"}}, Requests: 3}
	rep, err := acc.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Subscribers[0]
	if rep.Acked != 0 || rep.NoAnswer != 3 || s.LastAcked != nil || s.Pending == nil || s.Pending.Status != loadgen.Start {
		t.Fatalf("report %+v", rep)
	}
	if !s.Allows(false, "", "") || !s.Allows(true, "+34600000002", s.Pending.SessionID) || s.Allows(true, "+34600000002", "other") {
		t.Fatal("Allows: a pending Start allows nothing or its session, nothing else")
	}
}

// refuseJWKS is an app backend's transport on which every /jwks request
// fails as a stopped server's would: connection refused.
type refuseJWKS struct{ next http.RoundTripper }

func (r refuseJWKS) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == "/jwks" {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	return r.next.RoundTrip(req)
}

// TestFlowJWKSRefusedIsNotAnAnswer: a token answered, then the /jwks that
// checks its id_token refused (a server stopping between the two
// requests), is a transport failure (not Answered), not a wrong answer;
// the code still counts as redeemed.
func TestFlowJWKSRefusedIsNotAnAnswer(t *testing.T) {
	n := startNode(t)
	f := &loadgen.Flow{Client: n.client, HTTP: &http.Client{
		Transport:     refuseJWKS{next: http.DefaultTransport},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	res, err := f.Run(context.Background(), staticDevice(3))
	var se *loadgen.StepError
	if !errors.As(err, &se) || se.Answered() || se.Step != loadgen.StepToken || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("jwks refused: %v, want an unanswered token StepError", err)
	}
	if !res.Redeemed || res.Spent {
		t.Errorf("jwks refused: %+v, want the code redeemed and no token spent", res)
	}
}
