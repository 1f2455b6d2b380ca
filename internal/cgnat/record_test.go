package cgnat

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestParseLine(t *testing.T) {
	want := Record{
		Time: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), Op: Alloc,
		Private: netip.MustParseAddr("100.64.0.5"), Public: netip.MustParseAddr("203.0.113.7"),
		FirstPort: 1024, LastPort: 2047,
	}
	rel := want
	rel.Op = Release
	single := want
	single.LastPort = 1024
	v6 := want
	v6.Private = netip.MustParseAddr("fd00::5")
	ok := []struct {
		line string
		want Record
	}{
		{"2026-11-27T10:00:00Z ALLOC private=100.64.0.5 public=203.0.113.7 ports=1024-2047", want},
		{"2026-11-27T10:00:00Z ALLOC private=100.64.0.5 public=203.0.113.7 ports=1024-2047\r\n", want},
		{"2026-11-27T11:00:00+01:00\talloc\tports=1024-2047  public=203.0.113.7 private=100.64.0.5 proto=udp", want},
		{"2026-11-27T10:00:00Z RELEASE private=100.64.0.5 public=203.0.113.7 ports=1024-2047", rel},
		{"2026-11-27T10:00:00Z ALLOC private=100.64.0.5 public=203.0.113.7 ports=1024", single},
		{"2026-11-27T10:00:00Z ALLOC private=fd00::5 public=203.0.113.7 ports=1024-2047", v6},
		{"2026-11-27T10:00:00Z ALLOC private=::ffff:100.64.0.5 public=203.0.113.7 ports=1024-2047", want},
		// RFC 5424 header, with structured data and a BOM.
		{"<134>1 2026-11-27T10:00:01.003Z cgn-1 natlog 1234 ALLOC [meta seq=\"1\"] \ufeff2026-11-27T10:00:00Z ALLOC private=100.64.0.5 public=203.0.113.7 ports=1024-2047", want},
		{"<134>1 2026-11-27T10:00:01Z cgn-1 natlog - - - 2026-11-27T10:00:00Z ALLOC private=100.64.0.5 public=203.0.113.7 ports=1024-2047", want},
		// RFC 3164 header.
		{"<134>Nov 27 10:00:01 cgn-1 natlog[99]: 2026-11-27T10:00:00Z ALLOC private=100.64.0.5 public=203.0.113.7 ports=1024-2047", want},
	}
	for _, c := range ok {
		got, err := ParseLine([]byte(c.line))
		if err != nil || !got.Time.Equal(c.want.Time) || got.Op != c.want.Op || got.Private != c.want.Private ||
			got.Public != c.want.Public || got.FirstPort != c.want.FirstPort || got.LastPort != c.want.LastPort {
			t.Errorf("%q:\n got %v, %v\nwant %v", c.line, got, err, c.want)
		}
	}
	bad := []string{
		"",
		"hello",
		"2026-11-27T10:00:00Z FREE private=100.64.0.5 public=203.0.113.7 ports=1024-2047",
		"2026-11-27 ALLOC private=100.64.0.5 public=203.0.113.7 ports=1024-2047",
		"2026-11-27T10:00:00 ALLOC private=100.64.0.5 public=203.0.113.7 ports=1024-2047",
		"2026-11-27T10:00:00Z ALLOC public=203.0.113.7 ports=1024-2047",
		"2026-11-27T10:00:00Z ALLOC private=100.64.0.5 ports=1024-2047",
		"2026-11-27T10:00:00Z ALLOC private=100.64.0.5 public=203.0.113.7",
		"2026-11-27T10:00:00Z ALLOC private=100.64.0.5 private=100.64.0.6 public=203.0.113.7 ports=1-2",
		"2026-11-27T10:00:00Z ALLOC private=100.64.0.500 public=203.0.113.7 ports=1024-2047",
		"2026-11-27T10:00:00Z ALLOC private=fe80::1%eth0 public=203.0.113.7 ports=1024-2047",
		"2026-11-27T10:00:00Z ALLOC private=100.64.0.5 public=203.0.113.7 ports=2047-1024",
		"2026-11-27T10:00:00Z ALLOC private=100.64.0.5 public=203.0.113.7 ports=1024-65536",
		"2026-11-27T10:00:00Z ALLOC private=100.64.0.5 public=203.0.113.7 ports=+1024",
		"2026-11-27T10:00:00Z ALLOC private=100.64.0.5 public=203.0.113.7 ports=-",
		"2026-11-27T10:00:00Z ALLOC private=100.64.0.5 public=203.0.113.7 ports=1024-2047 junk",
		"2026-11-27T10:00:00Z ALLOC private=100.64.0.5 public=203.0.113.7\x00 ports=1024-2047",
		"1960-11-27T10:00:00Z ALLOC private=100.64.0.5 public=203.0.113.7 ports=1024-2047",
		"2026-11-27T10:00:00Z ALLOC private=100.64.0.5 public=203.0.113.7 ports=1024-2047 x=" + string(make([]byte, MaxLineLen)),
	}
	for _, l := range bad {
		if r, err := ParseLine([]byte(l)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: want ErrMalformed, got %v %v", l, r, err)
		}
	}
}

func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		"2026-11-27T10:00:00Z ALLOC private=100.64.0.5 public=203.0.113.7 ports=1024-2047",
		"2026-11-27T10:00:00.5+02:00 RELEASE private=fd00::1 public=2001:db8::7 ports=80",
		"<134>1 2026-11-27T10:00:01Z h a - - - 2026-11-27T10:00:00Z ALLOC private=10.0.0.1 public=192.0.2.1 ports=1-2",
		"<134>Nov 27 10:00:01 h tag: 2026-11-27T10:00:00Z release private=10.0.0.1 public=192.0.2.1 ports=1-2 proto=tcp",
		"2026-11-27T10:00:00Z ALLOC",
		"x=y",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseLine(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		if r.FirstPort > r.LastPort || !r.Private.IsValid() || !r.Public.IsValid() || (r.Op != Alloc && r.Op != Release) {
			t.Fatalf("invalid record accepted: %+v", r)
		}
		r2, err := ParseLine([]byte(r.String()))
		if err != nil || !r2.Time.Equal(r.Time) || r2.Op != r.Op || r2.Private != r.Private || r2.Public != r.Public ||
			r2.FirstPort != r.FirstPort || r2.LastPort != r.LastPort {
			t.Fatalf("round trip %q -> %q: %+v %v", b, r.String(), r2, err)
		}
	})
}
