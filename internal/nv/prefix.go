package nv

import "net/netip"

// CanonicalPrefix is the one form in which prefixes are stored and
// compared: an IPv4-mapped IPv6 prefix of /96 or longer becomes its IPv4
// prefix (::ffff:10.0.0.0/104 is 10.0.0.0/8), host bits are cleared and a
// zone is dropped. It returns the zero Prefix when p is invalid.
func CanonicalPrefix(p netip.Prefix) netip.Prefix {
	if !p.IsValid() {
		return netip.Prefix{}
	}
	a, bits := p.Addr().WithZone(""), p.Bits()
	if a.Is4In6() && bits >= 96 {
		a, bits = a.Unmap(), bits-96
	}
	return netip.PrefixFrom(a, bits).Masked()
}
