package nv

import (
	"net/netip"
	"testing"
)

func TestCanonicalPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"10.1.2.3/8":             "10.0.0.0/8",
		"10.0.0.5/32":            "10.0.0.5/32",
		"::ffff:10.1.2.3/104":    "10.0.0.0/8",
		"::ffff:10.1.2.3/128":    "10.1.2.3/32",
		"::ffff:10.1.2.3/96":     "0.0.0.0/0",
		"::ffff:10.1.2.3/80":     "::/80",
		"2001:db8:1:2::abcd/64":  "2001:db8:1:2::/64",
		"2001:db8:1:2::abcd/128": "2001:db8:1:2::abcd/128",
	} {
		if got := CanonicalPrefix(netip.MustParsePrefix(in)); got.String() != want {
			t.Errorf("CanonicalPrefix(%s) = %s, want %s", in, got, want)
		}
	}
	if got := CanonicalPrefix(netip.Prefix{}); got.IsValid() {
		t.Errorf("CanonicalPrefix(invalid) = %s", got)
	}
}
