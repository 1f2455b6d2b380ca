package radius

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"

	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/sqlite"
	"github.com/numbergate/numbergate/internal/testnet"
)

// answerWait bounds a wait for an answer that must come; generous so a
// loaded machine never fails a test (a working server answers long before).
const answerWait = time.Minute

const testSecret = "s3cret-of-the-pgw"

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// clock is an injectable, settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	srv   *Server
	store *sqlite.Store
	clock *clock
	addr  string
}

func openStore(t testing.TB) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func start(t *testing.T, cfg Config) *harness {
	t.Helper()
	return startWith(t, cfg, nil)
}

// startWith starts a server whose store is wrap(the SQLite store) when wrap
// is not nil.
func startWith(t *testing.T, cfg Config, wrap func(nv.NetworkSessionStore) nv.NetworkSessionStore) *harness {
	t.Helper()
	if cfg.Clients == nil {
		cfg.Clients = []Client{{CIDR: netip.MustParsePrefix("127.0.0.0/8"), Secret: []byte(testSecret)}}
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 2 * time.Hour
	}
	h := &harness{store: openStore(t), clock: &clock{t: t0}}
	var store nv.NetworkSessionStore = h.store
	if wrap != nil {
		store = wrap(store)
	}
	srv, err := New(cfg, store, Options{Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = pc.LocalAddr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, pc) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		pc.Close()
	})
	return h
}

// serveOnLoopback runs srv, as built by the test (its own clock and store),
// on a new loopback UDP socket until the test ends, reading through
// wrap(the socket) when wrap is not nil; it returns the socket.
func serveOnLoopback(t *testing.T, srv *Server, wrap func(net.PacketConn) net.PacketConn) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := pc
	if wrap != nil {
		served = wrap(pc)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, served) }()
	t.Cleanup(func() {
		cancel()
		<-done
		pc.Close()
	})
	return pc
}

type acct struct {
	status    rfc2866.AcctStatusType
	sessionID string
	msisdn    string
	ipv4      string
	ipv6      string // prefix
	nasIP     string
	nasID     string
	imsi      string
	secret    string
	msgAuth   string // "", "good", "bad"
	event     time.Time
}

func (a acct) packet(t *testing.T) *radius.Packet {
	t.Helper()
	secret := a.secret
	if secret == "" {
		secret = testSecret
	}
	p := radius.New(radius.CodeAccountingRequest, []byte(secret))
	rfc2866.AcctStatusType_Add(p, a.status)
	if a.sessionID != "" {
		rfc2866.AcctSessionID_AddString(p, a.sessionID)
	}
	if a.msisdn != "" {
		rfc2865.CallingStationID_AddString(p, a.msisdn)
	}
	if a.ipv4 != "" {
		rfc2865.FramedIPAddress_Add(p, net.ParseIP(a.ipv4).To4())
	}
	if a.ipv6 != "" {
		_, n, err := net.ParseCIDR(a.ipv6)
		if err != nil {
			t.Fatal(err)
		}
		v, err := radius.NewIPv6Prefix(n)
		if err != nil {
			t.Fatal(err)
		}
		p.Add(typeFramedIPv6Prefix, v)
	}
	if a.nasIP != "" {
		rfc2865.NASIPAddress_Add(p, net.ParseIP(a.nasIP).To4())
	}
	if a.nasID != "" {
		rfc2865.NASIdentifier_AddString(p, a.nasID)
	}
	if a.imsi != "" {
		sub := append([]byte{vendor3GPPIMSI, byte(2 + len(a.imsi))}, a.imsi...)
		v, _ := radius.NewVendorSpecific(vendor3GPP, sub)
		p.Add(rfc2865.VendorSpecific_Type, v)
	}
	if !a.event.IsZero() {
		v, _ := radius.NewDate(a.event)
		p.Add(rfc2869.EventTimestamp_Type, v)
	}
	p.Add(rfc2865.ProxyState_Type, radius.Attribute("proxy-state-1"))
	if a.msgAuth != "" {
		p.Add(rfc2869.MessageAuthenticator_Type, make(radius.Attribute, 16))
		b, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		mac := MessageAuthenticator(b, []byte(secret))
		if a.msgAuth == "bad" {
			mac[0] ^= 0xff
		}
		p.Set(rfc2869.MessageAuthenticator_Type, mac)
	}
	return p
}

func (h *harness) send(t *testing.T, a acct) (*radius.Packet, error) {
	t.Helper()
	return h.sendFrom(t, a, nil)
}

func (h *harness) sendFrom(t *testing.T, a acct, local *net.UDPAddr) (*radius.Packet, error) {
	t.Helper()
	timeout := answerWait
	if a.secret != "" && a.secret != testSecret || a.msgAuth == "bad" || local != nil {
		timeout = 400 * time.Millisecond // expected to go unanswered
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := radius.Client{Retry: 200 * time.Millisecond}
	if local != nil {
		c.Dialer.LocalAddr = local
	}
	return c.Exchange(ctx, a.packet(t), h.addr)
}

func (h *harness) mustAck(t *testing.T, a acct) {
	t.Helper()
	h.mustAckFrom(t, a, "")
}

// mustAckFrom sends a from the loopback address src ("" for any) and
// expects an Accounting-Response.
func (h *harness) mustAckFrom(t *testing.T, a acct, src string) {
	t.Helper()
	if src != "" && src != "127.0.0.1" {
		testnet.RequireLoopbackAliases(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), answerWait)
	defer cancel()
	c := radius.Client{Retry: 200 * time.Millisecond}
	if src != "" {
		c.Dialer.LocalAddr = &net.UDPAddr{IP: net.ParseIP(src)}
	}
	resp, err := c.Exchange(ctx, a.packet(t), h.addr)
	if err != nil {
		t.Fatalf("no Accounting-Response to %v: %v", a.status, err)
	}
	if resp.Code != radius.CodeAccountingResponse {
		t.Fatalf("response code %v", resp.Code)
	}
	if string(rfc2865.ProxyState_Get(resp)) != "proxy-state-1" {
		t.Errorf("Proxy-State not echoed")
	}
}

// packets reads the server's numbergate_radius_packets_total{result}.
func (h *harness) packets(result string) uint64 {
	return counterValue(h.srv.metrics.Packets.WithLabelValues(result))
}

// counts are the non-zero packet results, for failure messages.
func (h *harness) counts() map[string]uint64 {
	out := map[string]uint64{}
	for _, r := range Results {
		if n := h.packets(r); n > 0 {
			out[r] = n
		}
	}
	return out
}

func counterValue(c prometheus.Counter) uint64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return uint64(m.GetCounter().GetValue())
}

func (h *harness) numberAt(t *testing.T, addr string) nv.PhoneNumber {
	t.Helper()
	s, err := h.store.SessionFor(context.Background(), netip.MustParseAddr(addr), h.clock.Now().Add(-2*time.Hour))
	if errors.Is(err, nv.ErrNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return s.MSISDN
}

func TestStartStopInterim(t *testing.T) {
	h := start(t, Config{})
	h.mustAck(t, acct{status: rfc2866.AcctStatusType_Value_Start, sessionID: "A1", msisdn: "34600000001", ipv4: "10.0.0.5", nasIP: "192.0.2.1", imsi: "214070000000001"})
	if got := h.numberAt(t, "10.0.0.5"); got != "+34600000001" {
		t.Fatalf("after Start: %q", got)
	}
	ss, _ := h.store.NetworkSessions(context.Background())
	if len(ss) != 1 || ss[0].IMSI != "214070000000001" || ss[0].NAS != "192.0.2.1" || ss[0].SessionID != "A1" {
		t.Fatalf("stored session %+v", ss)
	}

	// A new Start on the address replaces the holder.
	h.mustAck(t, acct{status: rfc2866.AcctStatusType_Value_Start, sessionID: "B1", msisdn: "+34600000002", ipv4: "10.0.0.5", nasIP: "192.0.2.1"})
	if got := h.numberAt(t, "10.0.0.5"); got != "+34600000002" {
		t.Fatalf("after second Start: %q", got)
	}
	// Stop with the old session id keeps the new holder.
	h.mustAck(t, acct{status: rfc2866.AcctStatusType_Value_Stop, sessionID: "A1", ipv4: "10.0.0.5", nasIP: "192.0.2.1"})
	if got := h.numberAt(t, "10.0.0.5"); got != "+34600000002" {
		t.Fatalf("Stop with wrong id removed the session: %q", got)
	}
	// Stop with the right id removes it.
	h.mustAck(t, acct{status: rfc2866.AcctStatusType_Value_Stop, sessionID: "B1", ipv4: "10.0.0.5", nasIP: "192.0.2.1"})
	if got := h.numberAt(t, "10.0.0.5"); got != "" {
		t.Fatalf("after Stop: %q", got)
	}
	// Interim-Update recreates a session whose Start was lost.
	h.mustAck(t, acct{status: rfc2866.AcctStatusType_Value_InterimUpdate, sessionID: "C1", msisdn: "34600000003", ipv4: "10.0.0.5", nasIP: "192.0.2.1"})
	if got := h.numberAt(t, "10.0.0.5"); got != "+34600000003" {
		t.Fatalf("after Interim: %q", got)
	}
	st := h.packets
	if st("start") != 2 || st("stop") != 2 || st("interim") != 1 {
		t.Errorf("stats %v", h.counts())
	}
}

func TestIPv6AndTwoAddresses(t *testing.T) {
	h := start(t, Config{})
	h.mustAck(t, acct{status: rfc2866.AcctStatusType_Value_Start, sessionID: "S6", msisdn: "34600000006", ipv4: "10.0.0.6", ipv6: "2001:db8:1:2::/64", nasID: "pgw-1"})
	for _, a := range []string{"10.0.0.6", "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"} {
		if got := h.numberAt(t, a); got != "+34600000006" {
			t.Errorf("%s: %q", a, got)
		}
	}
	if got := h.numberAt(t, "2001:db8:1:3::1"); got != "" {
		t.Errorf("neighbouring /64 matched: %q", got)
	}
	// One number may hold several addresses (several APNs).
	h.mustAck(t, acct{status: rfc2866.AcctStatusType_Value_Start, sessionID: "S7", msisdn: "34600000006", ipv4: "10.0.0.7", nasID: "pgw-1"})
	if h.numberAt(t, "10.0.0.6") != "+34600000006" || h.numberAt(t, "10.0.0.7") != "+34600000006" {
		t.Error("second address replaced the first")
	}
	h.mustAck(t, acct{status: rfc2866.AcctStatusType_Value_Stop, sessionID: "S6", ipv4: "10.0.0.6", ipv6: "2001:db8:1:2::/64", nasID: "pgw-1"})
	if h.numberAt(t, "10.0.0.6") != "" || h.numberAt(t, "2001:db8:1:2::1") != "" || h.numberAt(t, "10.0.0.7") == "" {
		t.Error("Stop removed the wrong sessions")
	}
	// A delegated prefix is the subscriber's whole, at its own length.
	h.mustAck(t, acct{status: rfc2866.AcctStatusType_Value_Start, sessionID: "S8", msisdn: "34600000008", ipv6: "2001:db8:5600::/56", nasID: "pgw-1"})
	for a, want := range map[string]nv.PhoneNumber{"2001:db8:5600::1": "+34600000008", "2001:db8:5600:ab::1": "+34600000008", "2001:db8:5601::1": ""} {
		if got := h.numberAt(t, a); got != want {
			t.Errorf("%s after a /56 Start: %q, want %q", a, got, want)
		}
	}
}

// twoGateways configures three RADIUS clients on loopback: two named
// gateways and one left to its default name (its CIDR).
func twoGateways() Config {
	return Config{Clients: []Client{
		{Name: "pgw-a", CIDR: netip.MustParsePrefix("127.0.0.1/32"), Secret: []byte(testSecret)},
		{Name: "pgw-b", CIDR: netip.MustParsePrefix("127.0.0.2/32"), Secret: []byte(testSecret)},
		{CIDR: netip.MustParsePrefix("127.0.0.3/32"), Secret: []byte(testSecret)},
	}}
}

// Issue 6 item 5: Accounting-On/Off purge the sessions of the client entry
// the packet authenticated against, whatever NAS-IP-Address or
// NAS-Identifier it claims.
func TestAccountingOnPurgesOnlyItsClient(t *testing.T) {
	h := start(t, twoGateways())
	h.mustAckFrom(t, acct{status: rfc2866.AcctStatusType_Value_Start, sessionID: "1", msisdn: "34600000001", ipv4: "10.0.0.1", nasIP: "192.0.2.1", nasID: "pgw-a"}, "127.0.0.1")
	h.mustAckFrom(t, acct{status: rfc2866.AcctStatusType_Value_Start, sessionID: "2", msisdn: "34600000002", ipv4: "10.0.0.2", nasIP: "192.0.2.1", nasID: "pgw-a"}, "127.0.0.1")
	h.mustAckFrom(t, acct{status: rfc2866.AcctStatusType_Value_Start, sessionID: "3", msisdn: "34600000003", ipv4: "10.0.0.3", nasIP: "192.0.2.2"}, "127.0.0.2")
	h.mustAckFrom(t, acct{status: rfc2866.AcctStatusType_Value_Start, sessionID: "4", msisdn: "34600000004", ipv4: "10.0.0.4"}, "127.0.0.3")
	ss, err := h.store.NetworkSessions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	clients := map[string]string{}
	for _, s := range ss {
		clients[s.Prefix.String()] = s.Client
	}
	want := map[string]string{"10.0.0.1/32": "pgw-a", "10.0.0.2/32": "pgw-a", "10.0.0.3/32": "pgw-b", "10.0.0.4/32": "127.0.0.3/32"}
	if !reflect.DeepEqual(clients, want) {
		t.Fatalf("sessions' clients %v, want %v", clients, want)
	}
	h.clock.Add(time.Second)

	// pgw-b claims to be pgw-a (its NAS-IP-Address and NAS-Identifier).
	h.mustAckFrom(t, acct{status: rfc2866.AcctStatusType_Value_AccountingOn, nasIP: "192.0.2.1", nasID: "pgw-a"}, "127.0.0.2")
	if h.numberAt(t, "10.0.0.1") == "" || h.numberAt(t, "10.0.0.2") == "" {
		t.Error("an Accounting-On from pgw-b naming pgw-a's NAS purged pgw-a's sessions")
	}
	if h.numberAt(t, "10.0.0.3") != "" {
		t.Error("an Accounting-On from pgw-b did not purge pgw-b's own session")
	}
	// The client with the default name, without NAS attributes.
	h.mustAckFrom(t, acct{status: rfc2866.AcctStatusType_Value_AccountingOff}, "127.0.0.3")
	if h.numberAt(t, "10.0.0.4") != "" {
		t.Error("Accounting-Off did not purge its client's session")
	}
	if h.numberAt(t, "10.0.0.1") == "" || h.numberAt(t, "10.0.0.2") == "" {
		t.Error("an Accounting-Off from 127.0.0.3 purged pgw-a's sessions")
	}
	h.mustAckFrom(t, acct{status: rfc2866.AcctStatusType_Value_AccountingOn, nasID: "anything"}, "127.0.0.1")
	if h.numberAt(t, "10.0.0.1") != "" || h.numberAt(t, "10.0.0.2") != "" {
		t.Error("pgw-a's Accounting-On did not purge its sessions")
	}
}

// Issue 6 item 5: Stop and Interim-Update from one client never touch a
// session another client holds, even with the right Acct-Session-Id.
func TestStopAndInterimStayWithinClient(t *testing.T) {
	h := start(t, twoGateways())
	h.mustAckFrom(t, acct{status: rfc2866.AcctStatusType_Value_Start, sessionID: "A", msisdn: "34600000001", ipv4: "10.0.0.1", ipv6: "2001:db8:a::/64", nasIP: "192.0.2.1"}, "127.0.0.1")

	h.mustAckFrom(t, acct{status: rfc2866.AcctStatusType_Value_Stop, sessionID: "A", ipv4: "10.0.0.1", ipv6: "2001:db8:a::/64", nasIP: "192.0.2.1"}, "127.0.0.2")
	if h.numberAt(t, "10.0.0.1") != "+34600000001" || h.numberAt(t, "2001:db8:a::1") != "+34600000001" {
		t.Fatal("a Stop from pgw-b ended pgw-a's session")
	}
	h.mustAckFrom(t, acct{status: rfc2866.AcctStatusType_Value_InterimUpdate, sessionID: "A", msisdn: "34600000666", ipv4: "10.0.0.1", nasIP: "192.0.2.1"}, "127.0.0.2")
	h.mustAckFrom(t, acct{status: rfc2866.AcctStatusType_Value_InterimUpdate, sessionID: "X", msisdn: "34600000666", ipv6: "2001:db8:a::/64"}, "127.0.0.3")
	if got := h.numberAt(t, "10.0.0.1"); got != "+34600000001" {
		t.Fatalf("an Interim-Update from pgw-b took pgw-a's address: %q", got)
	}
	if got := h.numberAt(t, "2001:db8:a::1"); got != "+34600000001" {
		t.Fatalf("an Interim-Update from 127.0.0.3 took pgw-a's prefix: %q", got)
	}
	if n := h.packets(OutcomeForeign); n != 2 {
		t.Errorf("handled.foreign = %d, want 2", n)
	}
	// The owner's Interim and Stop still work.
	h.mustAckFrom(t, acct{status: rfc2866.AcctStatusType_Value_InterimUpdate, sessionID: "A", msisdn: "34600000001", ipv4: "10.0.0.1"}, "127.0.0.1")
	h.mustAckFrom(t, acct{status: rfc2866.AcctStatusType_Value_Stop, sessionID: "A", ipv4: "10.0.0.1", ipv6: "2001:db8:a::/64"}, "127.0.0.1")
	if h.numberAt(t, "10.0.0.1") != "" || h.numberAt(t, "2001:db8:a::1") != "" {
		t.Fatal("pgw-a's own Stop did not end its session")
	}
}

// gatedPurge holds PurgeClient until released, so a test can make a worker
// apply a later Start before an earlier Accounting-On.
type gatedPurge struct {
	nv.NetworkSessionStore
	entered chan struct{}
	release chan struct{}
}

func (g *gatedPurge) PurgeClient(ctx context.Context, client string, before time.Time) (int, error) {
	close(g.entered)
	<-g.release
	return g.NetworkSessionStore.PurgeClient(ctx, client, before)
}

// Issue 6 item 5: Accounting-On and Starts run on different workers and can
// be applied out of order; an On purges only the sessions last updated
// before it arrived, so a Start received after it survives even when it is
// stored first.
func TestAccountingOnKeepsStartReceivedAfterIt(t *testing.T) {
	g := &gatedPurge{entered: make(chan struct{}), release: make(chan struct{})}
	h := startWith(t, twoGateways(), func(s nv.NetworkSessionStore) nv.NetworkSessionStore {
		g.NetworkSessionStore = s
		return g
	})
	// The Start's shard must not be the On's, or it would wait behind it.
	n := uint32(h.srv.opts.Workers)
	onShard := shardOfString("client:pgw-a") % n
	addr := ""
	for i := 1; i < 255 && addr == ""; i++ {
		a := netip.AddrFrom4([4]byte{10, 0, 1, byte(i)})
		if shardOfPrefix(netip.PrefixFrom(a, 32))%n != onShard {
			addr = a.String()
		}
	}
	h.mustAckFrom(t, acct{status: rfc2866.AcctStatusType_Value_Start, sessionID: "old", msisdn: "34600000001", ipv4: "10.0.0.1"}, "127.0.0.1")
	h.clock.Add(time.Second)

	onDone := make(chan error, 1)
	on := acct{status: rfc2866.AcctStatusType_Value_AccountingOn}.packet(t)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), answerWait)
		defer cancel()
		c := radius.Client{Retry: 200 * time.Millisecond, Dialer: net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP("127.0.0.1")}}}
		_, err := c.Exchange(ctx, on, h.addr)
		onDone <- err
	}()
	select {
	case <-g.entered:
	case <-time.After(answerWait):
		close(g.release)
		t.Fatal("Accounting-On never reached the store")
	}
	h.clock.Add(time.Second)
	h.mustAckFrom(t, acct{status: rfc2866.AcctStatusType_Value_Start, sessionID: "new", msisdn: "34600000002", ipv4: addr}, "127.0.0.1")
	close(g.release)
	if err := <-onDone; err != nil {
		t.Fatalf("no Accounting-Response to the Accounting-On: %v", err)
	}

	if h.numberAt(t, "10.0.0.1") != "" {
		t.Error("the session started before the Accounting-On survived it")
	}
	if got := h.numberAt(t, addr); got != "+34600000002" {
		t.Errorf("the Start received after the Accounting-On was purged by it (%s -> %q)", addr, got)
	}
}

func TestRejectedPackets(t *testing.T) {
	h := start(t, Config{Clients: []Client{
		{CIDR: netip.MustParsePrefix("127.0.0.1/32"), Secret: []byte(testSecret)},
		{CIDR: netip.MustParsePrefix("127.0.0.4/32"), Secret: []byte(testSecret), RequireMessageAuthenticator: true},
	}})
	startA := acct{status: rfc2866.AcctStatusType_Value_Start, sessionID: "A", msisdn: "34600000001", ipv4: "10.0.0.5"}

	bad := startA
	bad.secret = "wrong"
	if _, err := h.send(t, bad); err == nil {
		t.Error("bad secret answered")
	}
	bad = startA
	bad.msgAuth = "bad"
	if _, err := h.send(t, bad); err == nil {
		t.Error("bad Message-Authenticator answered")
	}
	if _, err := h.sendFrom(t, startA, &net.UDPAddr{IP: net.ParseIP("127.0.0.3")}); err == nil {
		t.Error("unknown sender answered")
	}
	if _, err := h.sendFrom(t, startA, &net.UDPAddr{IP: net.ParseIP("127.0.0.4")}); err == nil {
		t.Error("packet without required Message-Authenticator answered")
	}
	missing := acct{status: rfc2866.AcctStatusType_Value_Start, sessionID: "A", ipv4: "10.0.0.5"}
	if _, err := h.sendFrom(t, missing, &net.UDPAddr{IP: net.ParseIP("127.0.0.1")}); err == nil {
		t.Error("Start without Calling-Station-Id answered")
	}
	// An Access-Request is not accounting.
	ar := radius.New(radius.CodeAccessRequest, []byte(testSecret))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := (&radius.Client{}).Exchange(ctx, ar, h.addr); err == nil {
		t.Error("Access-Request answered")
	}
	if h.numberAt(t, "10.0.0.5") != "" {
		t.Fatal("a rejected packet changed a session")
	}
	// Unanswered packets are counted when the server reads them, which on
	// a loaded machine may be after the client stopped listening.
	drops := []string{DropBadAuthenticator, DropBadMessageAuth, DropUnknownClient, DropMissingMessageAuth, DropMissingAttribute, DropNotAccounting}
	for deadline := time.Now().Add(answerWait); ; time.Sleep(10 * time.Millisecond) {
		missing := slices.DeleteFunc(slices.Clone(drops), func(k string) bool { return h.packets(k) != 0 })
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("dropped.%v not counted: %v", missing, h.counts())
			break
		}
	}

	good := startA
	good.msgAuth = "good"
	if _, err := h.sendFrom(t, good, &net.UDPAddr{IP: net.ParseIP("127.0.0.4")}); err != nil {
		t.Fatalf("good Message-Authenticator: %v", err)
	}
	if h.numberAt(t, "10.0.0.5") != "+34600000001" {
		t.Fatal("good Message-Authenticator not recorded")
	}
}

func TestIdleExpiry(t *testing.T) {
	h := start(t, Config{IdleTimeout: time.Hour})
	h.mustAck(t, acct{status: rfc2866.AcctStatusType_Value_Start, sessionID: "1", msisdn: "34600000001", ipv4: "10.0.0.1"})
	h.clock.Add(40 * time.Minute)
	h.mustAck(t, acct{status: rfc2866.AcctStatusType_Value_Start, sessionID: "2", msisdn: "34600000002", ipv4: "10.0.0.2"})
	h.clock.Add(30 * time.Minute) // session 1 idle 70 min, session 2 30 min
	n, err := h.srv.ExpireIdle(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("ExpireIdle = %d, %v; want 1", n, err)
	}
	ss, _ := h.store.NetworkSessions(context.Background())
	if len(ss) != 1 || ss[0].MSISDN != "+34600000002" {
		t.Fatalf("left %+v", ss)
	}
	// An Interim-Update keeps a session alive.
	h.clock.Add(50 * time.Minute)
	h.mustAck(t, acct{status: rfc2866.AcctStatusType_Value_InterimUpdate, sessionID: "2", msisdn: "34600000002", ipv4: "10.0.0.2"})
	h.clock.Add(50 * time.Minute)
	if n, _ := h.srv.ExpireIdle(context.Background()); n != 0 {
		t.Fatalf("refreshed session expired")
	}
}

func TestRetransmitAndStaleReplay(t *testing.T) {
	h := start(t, Config{IdleTimeout: time.Hour})
	a := acct{status: rfc2866.AcctStatusType_Value_Start, sessionID: "A", msisdn: "34600000001", ipv4: "10.0.0.5", event: t0}
	p := a.packet(t)
	ctx, cancel := context.WithTimeout(context.Background(), answerWait)
	defer cancel()
	for i := 0; i < 3; i++ { // the same packet three times
		if _, err := radius.Exchange(ctx, p, h.addr); err != nil {
			t.Fatal(err)
		}
	}
	st := h.packets
	if st("start") != 1 || st("duplicate") != 2 {
		t.Errorf("retransmits: %v", h.counts())
	}
	// B takes the address; A's old Start, replayed after two hours (out of
	// the replay cache), must not take it back.
	h.clock.Add(2 * time.Hour)
	h.mustAck(t, acct{status: rfc2866.AcctStatusType_Value_Start, sessionID: "B", msisdn: "34600000002", ipv4: "10.0.0.5", event: h.clock.Now()})
	h.srv.replay.sweep(h.clock.Now())
	if _, err := radius.Exchange(ctx, p, h.addr); err != nil {
		t.Fatal(err)
	}
	if got := h.numberAt(t, "10.0.0.5"); got != "+34600000002" {
		t.Fatalf("stale replay took the address: %q", got)
	}
	if h.packets(OutcomeStale) != 1 {
		t.Errorf("stale not counted: %v", h.packets(OutcomeStale))
	}
}

func TestFloodDoesNotBlockValid(t *testing.T) {
	h := start(t, Config{})
	conn, err := net.Dial("udp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		junk := acct{status: rfc2866.AcctStatusType_Value_Start, sessionID: "X", msisdn: "34600000666", ipv4: "10.0.0.66", secret: "forged"}.packet(t)
		b, _ := junk.Encode()
		for {
			select {
			case <-stop:
				return
			default:
				conn.Write(b)
				conn.Write([]byte{4, 1, 0, 20})
			}
		}
	}()
	for i := 0; i < 20; i++ {
		h.mustAck(t, acct{status: rfc2866.AcctStatusType_Value_InterimUpdate, sessionID: "V", msisdn: "34600000001", ipv4: "10.0.0.1"})
	}
	close(stop)
	wg.Wait()
	if h.numberAt(t, "10.0.0.66") != "" {
		t.Fatal("forged packet recorded")
	}
	if h.packets(DropBadAuthenticator) == 0 {
		t.Error("flood not counted")
	}
}

func TestNewValidates(t *testing.T) {
	_, err := New(Config{Clients: []Client{{}}, IdleTimeout: -1}, nil, Options{})
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"invalid cidr", "empty secret", "negative idle_timeout", "nil store"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

// unavailableStore fails every write with nv.ErrUnavailable while down is
// set, as a store on a full disk does.
type unavailableStore struct {
	nv.NetworkSessionStore
	down atomic.Bool
}

func (u *unavailableStore) StartSession(ctx context.Context, s nv.NetworkSession) error {
	if u.down.Load() {
		return fmt.Errorf("sqlite: start session: %w: database or disk is full", nv.ErrUnavailable)
	}
	return u.NetworkSessionStore.StartSession(ctx, s)
}

// A store that cannot write gets no Accounting-Response (the gateway
// retries) and is counted as store_unavailable; the retry is recorded once
// the store is back.
func TestStoreUnavailableNotAcknowledged(t *testing.T) {
	var u *unavailableStore
	h := startWith(t, Config{}, func(st nv.NetworkSessionStore) nv.NetworkSessionStore {
		u = &unavailableStore{NetworkSessionStore: st}
		return u
	})
	start := acct{status: rfc2866.AcctStatusType_Value_Start, sessionID: "U", msisdn: "34600000077", ipv4: "10.0.7.7"}
	u.down.Store(true)
	// Expected unanswered: the short wait (a local address picks it).
	if _, err := h.sendFrom(t, start, &net.UDPAddr{IP: net.ParseIP("127.0.0.1")}); err == nil {
		t.Fatal("a Start the store could not write was acknowledged")
	}
	// The client retransmits; every copy is dropped the same way.
	for deadline := time.Now().Add(answerWait); h.packets(DropStoreUnavailable) == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if h.packets(DropStoreUnavailable) == 0 || h.packets(DropStoreError) != 0 {
		t.Errorf("counters %v, want drops counted as store_unavailable", h.counts())
	}
	u.down.Store(false)
	h.mustAck(t, start)
	if got := h.numberAt(t, "10.0.7.7"); got != "+34600000077" {
		t.Errorf("after the retry: %q", got)
	}
}
