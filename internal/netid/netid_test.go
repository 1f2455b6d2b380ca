package netid

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/sqlite"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func conn(addr string) nv.Connection {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		ap = netip.AddrPortFrom(netip.MustParseAddr(addr), 0)
	}
	return nv.Connection{Addr: ap, At: t0}
}

func TestStaticLongestPrefix(t *testing.T) {
	ctx := context.Background()
	st := newFakeStore()
	st.ReplaceStaticRoutes(ctx, []nv.StaticRoute{
		{Prefix: netip.MustParsePrefix("10.0.0.0/8"), MSISDN: "+34600000008"},
		{Prefix: netip.MustParsePrefix("10.1.0.0/16"), MSISDN: "+34600000016"},
		{Prefix: netip.MustParsePrefix("10.1.2.3/32"), MSISDN: "+34600000032"},
		{Prefix: netip.MustParsePrefix("2001:db8::/32"), MSISDN: "+34600000632"},
		{Prefix: netip.MustParsePrefix("2001:db8:1:2::/64"), MSISDN: "+34600000664"},
		{Prefix: netip.MustParsePrefix("::ffff:192.0.2.0/120"), MSISDN: "+34600000024"},
	})
	s := NewStatic(st)
	cases := []struct {
		addr string
		want nv.PhoneNumber
	}{
		{"10.9.9.9:1000", "+34600000008"},
		{"10.1.9.9", "+34600000016"},
		{"10.1.2.3:443", "+34600000032"},
		{"[::ffff:10.1.2.3]:443", "+34600000032"},
		{"2001:db8:1:2::99", "+34600000664"},
		{"2001:db8:1:3::99", "+34600000632"},
		{"192.0.2.77", "+34600000024"},
		{"11.0.0.1", ""},
		{"2001:db9::1", ""},
	}
	for _, c := range cases {
		id, err := s.Resolve(ctx, conn(c.addr))
		if c.want == "" {
			if !errors.Is(err, nv.ErrUnknownDevice) {
				t.Errorf("%s: got %v, %v; want unknown device", c.addr, id, err)
			}
			continue
		}
		if err != nil || id.MSISDN != c.want || id.Source != nv.SourceStatic || id.Method != nv.AuthNetwork {
			t.Errorf("%s: got %+v, %v; want %s", c.addr, id, err, c.want)
		}
	}
	if st.reads != 1 {
		t.Errorf("store read %d times, want once (cached)", st.reads)
	}
	st.ReplaceStaticRoutes(ctx, nil)
	if err := s.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resolve(ctx, conn("10.1.2.3")); !errors.Is(err, nv.ErrUnknownDevice) {
		t.Errorf("after reload: %v", err)
	}
}

func TestChain(t *testing.T) {
	ctx := context.Background()
	st := newFakeStore()
	st.ReplaceStaticRoutes(ctx, []nv.StaticRoute{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), MSISDN: "+34600000001"}})
	st.StartSession(ctx, nv.NetworkSession{Prefix: netip.MustParsePrefix("10.0.0.5/32"), MSISDN: "+34600000005", SessionID: "s", UpdatedAt: t0})

	c, err := NewChainOrder(nil, []string{"radius", "static"}, NewStatic(st), NewRADIUS(st, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Sources(), ","); got != "radius,static" {
		t.Fatalf("order %s", got)
	}
	id, err := c.Resolve(ctx, conn("10.0.0.5"))
	if err != nil || id.MSISDN != "+34600000005" || id.Source != nv.SourceRADIUS {
		t.Errorf("radius first: %+v %v", id, err)
	}
	id, err = c.Resolve(ctx, conn("10.0.0.6"))
	if err != nil || id.MSISDN != "+34600000001" || id.Source != nv.SourceStatic {
		t.Errorf("fall through to static: %+v %v", id, err)
	}
	if _, err := c.Resolve(ctx, conn("192.0.2.1")); !errors.Is(err, nv.ErrUnknownDevice) {
		t.Errorf("unknown: %v", err)
	}
	st.fail = errDown
	if _, err := c.Resolve(ctx, conn("10.0.0.5")); !errors.Is(err, errDown) || errors.Is(err, nv.ErrUnknownDevice) {
		t.Errorf("store down must be an error, not unknown device: %v", err)
	}

	if _, err := NewChainOrder(nil, []string{"radius", "nope", "radius"}, NewRADIUS(st, 0)); err == nil ||
		!strings.Contains(err.Error(), "nope") || !strings.Contains(err.Error(), "twice") {
		t.Errorf("bad order error: %v", err)
	}
	empty := NewChain(nil)
	if _, err := empty.Resolve(ctx, conn("10.0.0.5")); !errors.Is(err, nv.ErrUnknownDevice) {
		t.Errorf("empty chain: %v", err)
	}
}

func TestRADIUSIdle(t *testing.T) {
	ctx := context.Background()
	st := newFakeStore()
	st.StartSession(ctx, nv.NetworkSession{Prefix: netip.MustParsePrefix("2001:db8:1:2::/64"), MSISDN: "+34600000064", UpdatedAt: t0})
	r := NewRADIUS(st, time.Hour)
	c := conn("[2001:db8:1:2:aaaa::1]:5555")
	if id, err := r.Resolve(ctx, c); err != nil || id.MSISDN != "+34600000064" {
		t.Fatalf("ipv6 /64: %+v %v", id, err)
	}
	c.At = t0.Add(2 * time.Hour)
	if _, err := r.Resolve(ctx, c); !errors.Is(err, nv.ErrUnknownDevice) {
		t.Fatalf("idle session: %v", err)
	}
}

func TestCGNAT(t *testing.T) {
	ctx := context.Background()
	st := newFakeStore()
	priv := netip.MustParseAddr("100.64.0.5")
	pub := netip.MustParseAddr("203.0.113.7")
	st.StartSession(ctx, nv.NetworkSession{Prefix: netip.PrefixFrom(priv, 32), MSISDN: "+34600000005", UpdatedAt: t0})
	st.AllocatePortBlock(ctx, nv.PortBlock{Private: priv, Public: pub, FirstPort: 1024, LastPort: 2047, Start: t0.Add(-time.Minute)})
	g := NewCGNAT(st, time.Hour)
	if id, err := g.Resolve(ctx, conn("203.0.113.7:1500")); err != nil || id.MSISDN != "+34600000005" || id.Source != nv.SourceCGNAT {
		t.Fatalf("cgnat: %+v %v", id, err)
	}
	for _, a := range []string{"203.0.113.7", "203.0.113.7:2048", "198.51.100.1:1500"} {
		if _, err := g.Resolve(ctx, conn(a)); !errors.Is(err, nv.ErrUnknownDevice) {
			t.Errorf("%s: %v", a, err)
		}
	}
}

func TestHeader(t *testing.T) {
	ctx := context.Background()
	h := NewHeader([]string{"x-msisdn", "X-Up-Calling-Line-Id"}, nil)
	c := conn("10.0.0.1")
	if _, err := h.Resolve(ctx, c); !errors.Is(err, nv.ErrUnknownDevice) {
		t.Fatalf("no enrichment: %v", err)
	}
	c.Enrichment = map[string]string{"X-Msisdn": "not a number", "X-Up-Calling-Line-Id": "0034600000009"}
	if id, err := h.Resolve(ctx, c); err != nil || id.MSISDN != "+34600000009" || id.Source != nv.SourceHeader {
		t.Fatalf("second header: %+v %v", id, err)
	}
	c.Enrichment = map[string]string{"X-Msisdn": "34600000001"}
	if id, err := h.Resolve(ctx, c); err != nil || id.MSISDN != "+34600000001" {
		t.Fatalf("digits: %+v %v", id, err)
	}
}

func TestSandbox(t *testing.T) {
	ctx := context.Background()
	s := NewSandbox()
	cases := []struct {
		hint string
		want nv.PhoneNumber
		bad  bool
	}{
		{"", SandboxDefaultNumber, false},
		{"tel:+447700900123", "+447700900123", false},
		{"TEL:+447700900123", "+447700900123", false},
		{"ipport:192.0.2.1:5000", SandboxDefaultNumber, false},
		{"tel:447700900123", "", true},
		{"tel:+44 7700", "", true},
		{"garbage", "", true},
	}
	if _, err := s.Resolve(ctx, nv.Connection{LoginHint: "tel:" + SandboxOffNetworkPrefix + "1234567"}); !errors.Is(err, nv.ErrUnknownDevice) {
		t.Errorf("a %s number must simulate an unidentified device, got %v", SandboxOffNetworkPrefix, err)
	}
	for _, c := range cases {
		id, err := s.Resolve(ctx, nv.Connection{LoginHint: c.hint})
		if c.bad {
			if !errors.Is(err, ErrBadLoginHint) || nv.ErrorCode(err) != nv.CodeInvalidArgument {
				t.Errorf("%q: want bad hint, got %v %v", c.hint, id, err)
			}
			continue
		}
		if err != nil || id.MSISDN != c.want || id.Source != nv.SourceSandbox || id.Method != nv.AuthNetwork {
			t.Errorf("%q: %+v %v", c.hint, id, err)
		}
	}
}

func TestParseLoginHint(t *testing.T) {
	cases := []struct {
		in   string
		want string // canonical form; "" for an error
		kind HintKind
	}{
		{"tel:+34600000001", "tel:+34600000001", HintTel},
		{"ipport:1.2.3.4", "ipport:1.2.3.4", HintIPPort},
		{"ipport:1.2.3.4:5678", "ipport:1.2.3.4:5678", HintIPPort},
		{"ipport:[2001:db8::1]:8080", "ipport:[2001:db8::1]:8080", HintIPPort},
		{"ipport:2001:db8::1", "ipport:2001:db8::1", HintIPPort},
		{"ipport:[2001:db8::1]", "ipport:2001:db8::1", HintIPPort},
		{"IPPort:1.2.3.4", "ipport:1.2.3.4", HintIPPort},
		{"operatortoken:abc.DEF-123_~", "operatortoken:abc.DEF-123_~", HintOperatorToken},
		{"tel:+0123456", "", 0},
		{"tel:", "", 0},
		{"tel:+3460000000100000000", "", 0},
		{"ipport:", "", 0},
		{"ipport:1.2.3.4:0", "", 0},
		{"ipport:1.2.3.4:65536", "", 0},
		{"ipport:1.2.3", "", 0},
		{"ipport:[1.2.3.4]:80", "", 0},
		{"ipport:2001:db8::1:8080:zz", "", 0},
		{"ipport:[2001:db8::1]:0", "", 0},
		{"ipport:fe80::1%eth0", "", 0},
		{"ipport:[fe80::1%eth0]:80", "", 0},
		{"ipport: 1.2.3.4", "", 0},
		{"operatortoken:", "", 0},
		{"operatortoken:a b", "", 0},
		{"mailto:a@b", "", 0},
		{"+34600000001", "", 0},
		{"", "", 0},
	}
	for _, c := range cases {
		h, err := ParseLoginHint(c.in)
		if c.want == "" {
			if err == nil || !errors.Is(err, ErrBadLoginHint) {
				t.Errorf("%q: want ErrBadLoginHint, got %+v %v", c.in, h, err)
			}
			continue
		}
		if err != nil || h.String() != c.want || h.Kind != c.kind {
			t.Errorf("%q: got %q (%v) %v, want %q", c.in, h.String(), h.Kind, err, c.want)
		}
	}
	h, _ := ParseLoginHint("ipport:[2001:db8::1]:8080")
	if !h.HasPort() || h.AddrPort() != netip.MustParseAddrPort("[2001:db8::1]:8080") {
		t.Errorf("addrport %v", h.AddrPort())
	}
}

func FuzzParseLoginHint(f *testing.F) {
	for _, s := range []string{
		"tel:+34600000001", "ipport:1.2.3.4", "ipport:1.2.3.4:5678", "ipport:[2001:db8::1]:8080",
		"ipport:2001:db8::1", "ipport:[::ffff:1.2.3.4]:1", "operatortoken:abc", "tel:+", "ipport:[", "x:",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseLoginHint(s)
		if err != nil {
			if !errors.Is(err, ErrBadLoginHint) || nv.ErrorCode(err) != nv.CodeInvalidArgument {
				t.Fatalf("error does not wrap ErrBadLoginHint: %v", err)
			}
			return
		}
		// The canonical form parses back to the same hint.
		h2, err := ParseLoginHint(h.String())
		if err != nil || h2 != h {
			t.Fatalf("round trip %q -> %q: %+v %v", s, h.String(), h2, err)
		}
	})
}

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	cases := []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"untrusted peer, XFF ignored", "198.51.100.9:4000", []string{"192.0.2.1"}, "198.51.100.9:4000"},
		{"trusted peer, no XFF", "10.0.0.1:4000", nil, "10.0.0.1:4000"},
		{"trusted peer, one hop", "10.0.0.1:4000", []string{"192.0.2.1"}, "192.0.2.1:0"},
		{"spoofed left entries ignored", "10.0.0.1:4000", []string{"6.6.6.6, 192.0.2.1, 10.0.0.2"}, "192.0.2.1:0"},
		{"several headers", "10.0.0.1:4000", []string{"6.6.6.6", "192.0.2.1", "10.0.0.3"}, "192.0.2.1:0"},
		{"entry with port", "10.0.0.1:4000", []string{"192.0.2.1:5555"}, "192.0.2.1:5555"},
		{"ipv6 entry", "[fd00::1]:4000", []string{"[2001:db8::7]:443"}, "[2001:db8::7]:443"},
		{"bare ipv6 entry", "[fd00::1]:4000", []string{"2001:db8::7"}, "[2001:db8::7]:0"},
		{"garbage stops at last trusted hop", "10.0.0.1:4000", []string{"192.0.2.1, garbage, 10.0.0.2"}, "10.0.0.2:0"},
		{"all trusted", "10.0.0.1:4000", []string{"10.0.0.7, 10.0.0.2"}, "10.0.0.7:0"},
		{"mapped peer", "[::ffff:10.0.0.1]:4000", []string{"192.0.2.1"}, "192.0.2.1:0"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/authorize", nil)
		r.RemoteAddr = c.remote
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := ClientAddr(r, trusted).String(); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "@"
	if ClientAddr(r, trusted).IsValid() {
		t.Error("unparsable RemoteAddr must give the zero AddrPort")
	}
}

func TestEnrichment(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}
	headers := []string{"x-msisdn"}
	r := httptest.NewRequest("GET", "/authorize", nil)
	r.Header.Set("X-MSISDN", "34600000001")
	if got := Enrichment(r, netip.MustParseAddr("198.51.100.9"), proxies, headers); got != nil {
		t.Errorf("untrusted peer's X-MSISDN honoured: %v", got)
	}
	got := Enrichment(r, netip.MustParseAddr("10.1.2.3"), proxies, headers)
	if got["X-Msisdn"] != "34600000001" {
		t.Errorf("trusted proxy: %v", got)
	}
	r.Header.Add("X-MSISDN", "34600000002")
	if got := Enrichment(r, netip.MustParseAddr("10.1.2.3"), proxies, headers); got != nil {
		t.Errorf("duplicate header honoured: %v", got)
	}

	// End to end at the edge: an untrusted peer spoofing both XFF and
	// X-MSISDN is identified by its own address only.
	ctx := context.Background()
	r = httptest.NewRequest("GET", "/authorize", nil)
	r.RemoteAddr = "198.51.100.9:4000"
	r.Header.Set("X-Forwarded-For", "10.0.0.5")
	r.Header.Set("X-MSISDN", "34600000001")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	addr := ClientAddr(r, trusted)
	peer, _ := netip.ParseAddrPort(r.RemoteAddr)
	c := nv.Connection{Addr: addr, Enrichment: Enrichment(r, peer.Addr(), proxies, headers), At: t0}
	st := newFakeStore()
	st.StartSession(ctx, nv.NetworkSession{Prefix: netip.MustParsePrefix("10.0.0.5/32"), MSISDN: "+34600000005", UpdatedAt: t0})
	chain := NewChain(nil, NewHeader(headers, nil), NewRADIUS(st, time.Hour))
	if id, err := chain.Resolve(ctx, c); !errors.Is(err, nv.ErrUnknownDevice) {
		t.Errorf("spoofing peer identified as %+v (%v)", id, err)
	}
}

func BenchmarkStatic(b *testing.B) {
	ctx := context.Background()
	st := newFakeStore()
	var routes []nv.StaticRoute
	for i := 0; i < 1000; i++ {
		routes = append(routes, nv.StaticRoute{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}), 32), MSISDN: "+34600000001"})
	}
	st.ReplaceStaticRoutes(ctx, routes)
	s := NewStatic(st)
	c := conn("10.3.200.1")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Resolve(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStaticSQLite compares the cached map with reading the SQLite
// store on every request (what Static avoids).
func BenchmarkStaticSQLite(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var routes []nv.StaticRoute
	for i := 0; i < 1000; i++ {
		routes = append(routes, nv.StaticRoute{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}), 32), MSISDN: "+34600000001"})
	}
	if err := st.ReplaceStaticRoutes(ctx, routes); err != nil {
		b.Fatal(err)
	}
	c := conn("10.3.200.1")
	b.Run("cached", func(b *testing.B) {
		s := NewStatic(st)
		for b.Loop() {
			if _, err := s.Resolve(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("read-per-request", func(b *testing.B) {
		s := NewStatic(st)
		for b.Loop() {
			if err := s.Reload(ctx); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Resolve(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A '+' pasted raw into a query string arrives as a space: the error says
// how to write it, and the detailed message is what nv.Error carries.
func TestParseLoginHintPlusAsSpace(t *testing.T) {
	_, err := ParseLoginHint("tel: 447700900123")
	var e *nv.Error
	if !errors.Is(err, ErrBadLoginHint) || !errors.As(err, &e) {
		t.Fatalf("want a bad hint *nv.Error, got %v", err)
	}
	if !strings.Contains(e.Message, "%2B") || !strings.HasPrefix(e.Message, ErrBadLoginHint.Message) {
		t.Errorf("message does not say to write %%2B: %q", e.Message)
	}
	if strings.Contains(e.Message, "447700900123") {
		t.Errorf("message repeats the number: %q", e.Message)
	}
	_, err = ParseLoginHint("tel:34600000001")
	if !errors.As(err, &e) || strings.Contains(e.Message, "%2B") || !strings.Contains(e.Message, "E.164") {
		t.Errorf("a hint without + gets the E.164 message: %v", err)
	}
}
