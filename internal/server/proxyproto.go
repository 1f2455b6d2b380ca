package server

import (
	"net"
	"net/netip"
	"time"

	"github.com/pires/go-proxyproto"
)

// ProxyProtocolListener wraps the public listener for the PROXY protocol
// (v1 and v2, github.com/pires/go-proxyproto): a peer inside trusted (a load
// balancer) must open every connection with a valid PROXY header, whose
// source address and port become the connection's RemoteAddr; a connection
// from it without one is closed. A peer outside trusted that opens with a
// PROXY header is closed too, so nobody else can claim an address. A
// trusted peer has headerTimeout to send its header.
func ProxyProtocolListener(ln net.Listener, trusted []netip.Prefix, headerTimeout time.Duration) net.Listener {
	return &proxyproto.Listener{
		Listener:          ln,
		ReadHeaderTimeout: headerTimeout,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if peerIn(o.Upstream, trusted) {
				return proxyproto.REQUIRE, nil
			}
			return proxyproto.REJECT, nil
		},
	}
}

func peerIn(a net.Addr, prefixes []netip.Prefix) bool {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap().WithZone("")
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
