package config

import (
	"net/netip"
	"strings"
	"testing"
)

const minimalPP = "listen: 127.0.0.1:8443\nissuer: https://nv.example.net\ndata_dir: /tmp/x\n"

const cgnatAndRADIUS = `network:
  radius:
    listen: 127.0.0.1:1813
    clients: [{cidr: 10.20.0.0/16, secret: s}]
  cgnat:
    files: [/tmp/alloc.log]
`

func TestProxyProtocol(t *testing.T) {
	cfg, err := Parse([]byte(minimalPP + "proxy_protocol:\n  trusted: [10.40.0.10, 10.41.0.0/16]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.40.0.10/32"), netip.MustParsePrefix("10.41.0.0/16")}
	if cfg.ProxyProtocol == nil || len(cfg.ProxyProtocol.Trusted) != 2 || cfg.ProxyProtocol.Trusted[0] != want[0] || cfg.ProxyProtocol.Trusted[1] != want[1] {
		t.Errorf("proxy_protocol = %+v", cfg.ProxyProtocol)
	}
	if cfg, _ := Parse([]byte(minimalPP)); cfg.ProxyProtocol != nil {
		t.Error("proxy_protocol set without the section")
	}
	for yaml, want := range map[string]string{
		"proxy_protocol: {}\n":                       "proxy_protocol.trusted: required",
		"proxy_protocol:\n  trusted: [10.0.0.1/8]\n": "proxy_protocol.trusted[0]",
	} {
		if _, err := Parse([]byte(minimalPP + yaml)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", yaml, err, want)
		}
	}
}

func TestCGNATNeedsRADIUS(t *testing.T) {
	_, err := Parse([]byte(minimalPP + "network:\n  cgnat:\n    files: [/tmp/alloc.log]\n"))
	if err == nil || !strings.Contains(err.Error(), "network.cgnat: needs network.radius") {
		t.Errorf("cgnat without radius: %v", err)
	}
	if _, err := Parse([]byte(minimalPP + cgnatAndRADIUS)); err != nil {
		t.Errorf("cgnat with radius: %v", err)
	}
}

func TestWarnings(t *testing.T) {
	for _, c := range []struct {
		yaml string
		warn bool
	}{
		{minimalPP + cgnatAndRADIUS, false},
		{minimalPP + "trusted_proxies: [10.40.0.10]\n" + cgnatAndRADIUS, true},
		{minimalPP + "trusted_proxies: [10.40.0.10]\nproxy_protocol: {trusted: [10.40.0.10]}\n" + cgnatAndRADIUS, false},
		{minimalPP + "trusted_proxies: [10.40.0.10]\n", false},
	} {
		cfg, err := Parse([]byte(c.yaml))
		if err != nil {
			t.Fatal(err)
		}
		w := cfg.Warnings()
		if got := len(w) > 0 && strings.Contains(w[0], "port is unknown"); got != c.warn {
			t.Errorf("%s\nwarnings %q, want a port warning: %v", c.yaml, w, c.warn)
		}
	}
}
