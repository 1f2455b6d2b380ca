package cgnat_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/cgnat"
	"github.com/numbergate/numbergate/internal/netid"
	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/sqlite"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
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

	src := netid.NewCGNAT(st, 0, nil)
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
		if err != nil || id.MSISDN != cs.want || id.Source != netid.SourceCGNAT {
			t.Errorf("%s at %s: got %+v %v, want %s", cs.addr, cs.at.Format(time.TimeOnly), id, err, cs.want)
		}
	}
}

func TestSyslogUDP(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	st := openStore(t)
	g, err := cgnat.New(cgnat.Config{Senders: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}, st, cgnat.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	done := make(chan error, 1)
	go func() { done <- g.Serve(ctx, pc) }()

	send := func(local string, msgs ...string) {
		t.Helper()
		conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(local)}, pc.LocalAddr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
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
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := g.Stats()
		if s["applied.alloc"] == 2 && s["applied.release"] == 1 && s["malformed"] == 1 && s["unknown_sender"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %v", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
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
