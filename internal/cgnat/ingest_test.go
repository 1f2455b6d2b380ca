package cgnat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/numbergate/numbergate/internal/cgnat"
	"github.com/numbergate/numbergate/internal/netid"
	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/sqlite"
	"github.com/numbergate/numbergate/internal/testlog"
	"github.com/numbergate/numbergate/internal/testnet"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func openStore(t testing.TB) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// serve runs g's syslog listener on a new loopback UDP socket, closed when
// the test ends, until ctx ends; done receives what Serve returned.
func serve(t *testing.T, ctx context.Context, g *cgnat.Ingester) (pc net.PacketConn, done <-chan error) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	served := make(chan error, 1)
	go func() { served <- g.Serve(ctx, pc) }()
	return pc, served
}

// dial opens a UDP socket from the loopback address local to pc.
func dial(t *testing.T, local string, pc net.PacketConn) *net.UDPConn {
	t.Helper()
	conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(local)}, pc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// waitCounts waits until the ingester's counters satisfy done and returns
// them; after a minute (generous: a loaded machine is slow) it fails the
// test, saying what it waited for.
func waitCounts(t *testing.T, m *cgnat.Metrics, want string, done func(map[string]uint64) bool) map[string]uint64 {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		s := counts(m)
		if done(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("counters %v, want %s", s, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTimeWindow: a public address and port maps to the right subscriber
// only inside the allocation's time window (file ingestion, SQLite store,
// RADIUS sessions of the private addresses, netid's CGNAT source).
func TestTimeWindow(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	for _, s := range []nv.NetworkSession{
		{Prefix: netip.MustParsePrefix("100.64.0.5/32"), MSISDN: "+34600000005", SessionID: "a", NAS: "pgw", StartedAt: t0, UpdatedAt: t0},
		{Prefix: netip.MustParsePrefix("100.64.0.6/32"), MSISDN: "+34600000006", SessionID: "b", NAS: "pgw", StartedAt: t0, UpdatedAt: t0},
	} {
		if err := st.StartSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	log := strings.Join([]string{
		"2026-11-27T10:00:00Z ALLOC private=100.64.0.5 public=203.0.113.7 ports=1024-2047",
		"this line is not a record",
		"2026-11-27T11:00:00Z RELEASE private=100.64.0.5 public=203.0.113.7 ports=1024-2047",
		"2026-11-27T11:30:00Z ALLOC private=100.64.0.6 public=203.0.113.7 ports=1024-2047",
		"2026-11-27T11:30:00Z ALLOC private=100.64.0.6 public=203.0.113.7 ports=1024-2047",   // ingested twice: harmless
		"2026-11-27T11:31:00Z RELEASE private=100.64.0.9 public=203.0.113.7 ports=4096-5119", // nothing open
		"",
	}, "\n")
	path := filepath.Join(t.TempDir(), "nat.log")
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := cgnat.New(cgnat.Config{Files: []string{path}}, st, cgnat.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := g.IngestFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c != (cgnat.Counts{Applied: 4, Malformed: 1, Unmatched: 1}) {
		t.Errorf("counts %+v", c)
	}

	src := netid.NewCGNAT(st, 0)
	cases := []struct {
		addr string
		at   time.Time
		want nv.PhoneNumber
	}{
		{"203.0.113.7:1500", t0.Add(-time.Second), ""},
		{"203.0.113.7:1500", t0, "+34600000005"},
		{"203.0.113.7:1024", t0.Add(30 * time.Minute), "+34600000005"},
		{"203.0.113.7:2047", t0.Add(59 * time.Minute), "+34600000005"},
		{"203.0.113.7:2048", t0.Add(30 * time.Minute), ""},
		{"203.0.113.8:1500", t0.Add(30 * time.Minute), ""},
		{"203.0.113.7:1500", t0.Add(75 * time.Minute), ""}, // released, not yet reallocated
		{"203.0.113.7:1500", t0.Add(100 * time.Minute), "+34600000006"},
		{"203.0.113.7", t0.Add(30 * time.Minute), ""}, // no port: not for this source
	}
	for _, cs := range cases {
		ap, err := netip.ParseAddrPort(cs.addr)
		if err != nil {
			ap = netip.AddrPortFrom(netip.MustParseAddr(cs.addr), 0)
		}
		id, err := src.Resolve(ctx, nv.Connection{Addr: ap, At: cs.at})
		if cs.want == "" {
			if !errors.Is(err, nv.ErrUnknownDevice) {
				t.Errorf("%s at %s: got %+v %v, want unknown", cs.addr, cs.at.Format(time.TimeOnly), id, err)
			}
			continue
		}
		if err != nil || id.MSISDN != cs.want || id.Source != nv.SourceCGNAT {
			t.Errorf("%s at %s: got %+v %v, want %s", cs.addr, cs.at.Format(time.TimeOnly), id, err, cs.want)
		}
	}
}

func TestSyslogUDP(t *testing.T) {
	testnet.RequireLoopbackAliases(t)
	ctx, cancel := context.WithCancel(context.Background())
	st := openStore(t)
	m := cgnat.NewMetrics(nil)
	g, err := cgnat.New(cgnat.Config{Senders: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}, st, cgnat.Options{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	pc, done := serve(t, ctx, g)

	send := func(local string, msgs ...string) {
		t.Helper()
		conn := dial(t, local, pc)
		defer conn.Close()
		for _, m := range msgs {
			if _, err := conn.Write([]byte(m)); err != nil {
				t.Fatal(err)
			}
		}
	}
	send("127.0.0.2", "2026-11-27T10:00:00Z ALLOC private=100.64.0.66 public=203.0.113.66 ports=1-100")
	send("127.0.0.1",
		"<134>1 2026-11-27T10:00:01Z cgn-1 natlog - - - 2026-11-27T10:00:00Z ALLOC private=100.64.0.5 public=203.0.113.7 ports=1024-2047",
		"<134>Nov 27 10:00:02 cgn-1 natlog: 2026-11-27T10:00:00Z ALLOC private=100.64.0.6 public=203.0.113.7 ports=2048-3071\n"+
			"<134>Nov 27 10:00:02 cgn-1 natlog: 2026-11-27T10:30:00Z RELEASE private=100.64.0.6 public=203.0.113.7 ports=2048-3071",
		"\x00\xff garbage",
	)
	waitCounts(t, m, "2 allocations, 1 release, 1 malformed and 1 from an unknown sender", func(s map[string]uint64) bool {
		return s[cgnat.ResultAlloc] == 2 && s[cgnat.ResultRelease] == 1 && s[cgnat.ResultMalformed] == 1 && s[cgnat.DropUnknownSender] == 1
	})
	a, err := st.PrivateAddrFor(ctx, netip.MustParseAddrPort("203.0.113.7:1500"), t0.Add(time.Minute))
	if err != nil || a != netip.MustParseAddr("100.64.0.5") {
		t.Errorf("RFC 5424 record: %v %v", a, err)
	}
	if _, err := st.PrivateAddrFor(ctx, netip.MustParseAddrPort("203.0.113.7:2500"), t0.Add(time.Hour)); !errors.Is(err, nv.ErrNotFound) {
		t.Errorf("released block still maps: %v", err)
	}
	if _, err := st.PrivateAddrFor(ctx, netip.MustParseAddrPort("203.0.113.66:50"), t0.Add(time.Minute)); !errors.Is(err, nv.ErrNotFound) {
		t.Errorf("record from an unknown sender stored: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

func TestIngestFileMissing(t *testing.T) {
	g, _ := cgnat.New(cgnat.Config{}, openStore(t), cgnat.Options{})
	if _, err := g.IngestFile(context.Background(), filepath.Join(t.TempDir(), "none.log")); err == nil {
		t.Error("missing file: no error")
	}
}

// Issue 6 item 4: without senders anyone who reaches the syslog port could
// forge an allocation, so syslog is refused without them.
func TestSyslogRequiresSenders(t *testing.T) {
	st := openStore(t)
	if _, err := cgnat.New(cgnat.Config{SyslogListen: "127.0.0.1:0"}, st, cgnat.Options{}); err == nil {
		t.Error("New accepted syslog_listen without senders")
	}
	g, err := cgnat.New(cgnat.Config{}, st, cgnat.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if err := g.Serve(t.Context(), pc); err == nil {
		t.Error("Serve accepted syslog without senders")
	}
}

// Issue 6 item 4: a flood of malformed lines is logged at most once per
// sender per interval, with the count (one flood produced 96,000 log lines
// in 3 s), and datagrams from outside senders are dropped and counted.
func TestMalformedFloodLoggedOncePerSender(t *testing.T) {
	testnet.RequireLoopbackAliases(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs testlog.Buffer
	m := cgnat.NewMetrics(nil)
	g, err := cgnat.New(cgnat.Config{Senders: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("127.0.0.3/32")}},
		openStore(t), cgnat.Options{
			Logger:  slog.New(slog.NewJSONHandler(&logs, nil)),
			Metrics: m,
		})
	if err != nil {
		t.Fatal(err)
	}
	pc, done := serve(t, ctx, g)

	sent := map[string]int{}
	send := func(local string, datagrams, lines int) {
		t.Helper()
		conn := dial(t, local, pc)
		defer conn.Close()
		d := strings.TrimSuffix(strings.Repeat("not a record\n", lines), "\n")
		for range datagrams {
			if _, err := conn.Write([]byte(d)); err != nil {
				t.Fatal(err)
			}
			sent[local] += lines
			time.Sleep(100 * time.Microsecond) // stay under the socket buffer
		}
	}
	send("127.0.0.1", 200, 20)
	send("127.0.0.3", 3, 2)
	send("127.0.0.2", 50, 20) // not a sender: dropped unread
	want := uint64(sent["127.0.0.1"] + sent["127.0.0.3"])
	waitCounts(t, m, fmt.Sprintf("%d malformed and 50 dropped (UDP loss on loopback?)", want), func(s map[string]uint64) bool {
		return s[cgnat.ResultMalformed] >= want && s[cgnat.DropUnknownSender] >= 50
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if n := counts(m)[cgnat.DropUnknownSender]; n != 50 {
		t.Errorf("numbergate_cgnat_datagrams_dropped_total{reason=unknown_sender} = %d, want 50", n)
	}

	lines, counts := map[string]int{}, map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec struct {
			Msg    string `json:"msg"`
			Sender string `json:"sender"`
			Count  int    `json:"count"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if rec.Msg == "malformed cgnat records skipped" {
			lines[rec.Sender]++
			counts[rec.Sender] += rec.Count
		}
	}
	for _, src := range []string{"127.0.0.1", "127.0.0.3"} {
		sender := "syslog " + src
		if lines[sender] < 1 || lines[sender] > 2 {
			t.Errorf("%s: %d log lines for %d malformed records, want 1 or 2 (the first, then the count at stop)", src, lines[sender], sent[src])
		}
		if counts[sender] != sent[src] {
			t.Errorf("%s: log lines count %d malformed records, sent %d", src, counts[sender], sent[src])
		}
	}
	if lines["syslog 127.0.0.2"] != 0 {
		t.Error("a datagram from outside senders was parsed")
	}
}

// TestSyslogOrderPerSubscriber: many subscribers' ALLOC, RELEASE and
// re-ALLOC arrive back to back; the store workers keep each subscriber's
// order (no RELEASE is unmatched, every final allocation is open), and
// Serve returns only once the records it received are stored.
func TestSyslogOrderPerSubscriber(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	st := openStore(t)
	m := cgnat.NewMetrics(nil)
	g, err := cgnat.New(cgnat.Config{Senders: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}, st, cgnat.Options{Workers: 8, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	pc, done := serve(t, ctx, g)
	conn := dial(t, "127.0.0.1", pc)
	defer conn.Close()
	const subs = 40
	for i := range subs {
		ports := fmt.Sprintf("ports=%d-%d", 1024+i*10, 1024+i*10+9)
		for _, l := range []string{
			"2026-11-27T10:00:00Z ALLOC private=100.64.1.%d public=203.0.113.9 " + ports,
			"2026-11-27T10:05:00Z RELEASE private=100.64.1.%d public=203.0.113.9 " + ports,
			"2026-11-27T10:10:00Z ALLOC private=100.64.1.%d public=203.0.113.9 " + ports,
		} {
			if _, err := conn.Write([]byte(fmt.Sprintf(l, i))); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(200 * time.Microsecond) // UDP on loopback: do not overrun the socket buffer
	}
	s := waitCounts(t, m, fmt.Sprintf("%d records", 3*subs), func(s map[string]uint64) bool {
		return s[cgnat.ResultAlloc]+s[cgnat.ResultRelease]+s[cgnat.ResultUnmatched] == 3*subs
	})
	if s[cgnat.ResultUnmatched] != 0 || s[cgnat.DropOverload] != 0 {
		t.Errorf("stats %v: a RELEASE overtook its ALLOC", s)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if g.QueueDepth() != 0 {
		t.Errorf("QueueDepth after Serve returned = %d", g.QueueDepth())
	}
	for i := range subs {
		ap := netip.AddrPortFrom(netip.MustParseAddr("203.0.113.9"), uint16(1024+i*10))
		a, err := st.PrivateAddrFor(context.Background(), ap, t0.Add(time.Hour))
		if want := netip.MustParseAddr(fmt.Sprintf("100.64.1.%d", i)); err != nil || a != want {
			t.Errorf("%v after re-ALLOC = %v, %v; want %v", ap, a, err, want)
		}
		if _, err := st.PrivateAddrFor(context.Background(), ap, t0.Add(7*time.Minute)); !errors.Is(err, nv.ErrNotFound) {
			t.Errorf("%v between RELEASE and re-ALLOC still maps: %v", ap, err)
		}
	}
}

// counts reads the ingester's collectors: record results and drop reasons
// by label value.
func counts(m *cgnat.Metrics) map[string]uint64 {
	out := map[string]uint64{}
	for _, vec := range []*prometheus.CounterVec{m.Records, m.Dropped} {
		ch := make(chan prometheus.Metric, 64)
		vec.Collect(ch)
		close(ch)
		for c := range ch {
			var d dto.Metric
			if err := c.Write(&d); err != nil {
				panic(err)
			}
			out[d.GetLabel()[0].GetValue()] += uint64(d.GetCounter().GetValue())
		}
	}
	return out
}
