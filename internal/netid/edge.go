package netid

import (
	"net/http"
	"net/netip"
	"net/textproto"
	"strings"
)

// maxForwardedHops bounds the X-Forwarded-For entries looked at.
const maxForwardedHops = 32

// ClientAddr returns the address of the device behind an HTTP request: the
// TCP peer (r.RemoteAddr), unless the peer is inside trusted (the operator's
// own proxies and load balancers). Then X-Forwarded-For is walked from the
// right, skipping trusted hops, and the first untrusted address is the
// client. Entries left of it were written by the client itself and are never
// believed. An entry that does not parse stops the walk at the last trusted
// hop seen. A port is kept when the entry carries one ("1.2.3.4:5678",
// "[2001:db8::1]:443"), else it is 0. IPv4-mapped IPv6 addresses are
// unmapped. The zero AddrPort is returned when r.RemoteAddr does not parse.
func ClientAddr(r *http.Request, trusted []netip.Prefix) netip.AddrPort {
	peer, ok := parseHop(r.RemoteAddr)
	if !ok {
		return netip.AddrPort{}
	}
	if !inPrefixes(peer.Addr(), trusted) {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := peer
	for i, n := len(hops)-1, 0; i >= 0 && n < maxForwardedHops; i, n = i-1, n+1 {
		hop, ok := parseHop(strings.TrimSpace(hops[i]))
		if !ok {
			return client
		}
		client = hop
		if !inPrefixes(hop.Addr(), trusted) {
			return hop
		}
	}
	return client
}

// parseHop parses "addr", "addr:port" or "[v6]:port".
func parseHop(s string) (netip.AddrPort, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port()), true
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Unmap().WithZone(""), 0), true
}

// Enrichment returns the header-enrichment values of r for the configured
// header names, keyed by canonical header name, for nv.Connection.Enrichment.
// It returns nil unless peer, which must be the TCP peer of the connection
// (never an address taken from X-Forwarded-For), is inside proxies: anyone
// else could write X-MSISDN. A header sent more than once is ambiguous and
// ignored.
func Enrichment(r *http.Request, peer netip.Addr, proxies []netip.Prefix, headers []string) map[string]string {
	if !peer.IsValid() || !inPrefixes(peer, proxies) {
		return nil
	}
	var out map[string]string
	for _, h := range headers {
		name := textproto.CanonicalMIMEHeaderKey(h)
		vs := r.Header.Values(name)
		if len(vs) != 1 {
			continue
		}
		v := strings.TrimSpace(vs[0])
		if v == "" {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = v
	}
	return out
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	a = a.Unmap().WithZone("")
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
