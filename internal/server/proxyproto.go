package server

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pires/go-proxyproto"
)

// ProxyProtocolListener wraps the public listener for the PROXY protocol
// (v1 and v2, github.com/pires/go-proxyproto): a peer inside trusted (a load
// balancer) must open every connection with a valid PROXY header, whose
// source address and port become the connection's RemoteAddr; a connection
// from it without one is closed. A peer outside trusted that opens with a
// PROXY header is closed too, so nobody else can claim an address. A
// trusted peer has headerTimeout to send its header. Refused connections
// are logged (at most one line every refusalLogEvery), since the client
// only sees the connection close.
func ProxyProtocolListener(ln net.Listener, trusted []netip.Prefix, headerTimeout time.Duration, log *slog.Logger) net.Listener {
	return &refusalLogger{
		Listener: &proxyproto.Listener{
			Listener:          ln,
			ReadHeaderTimeout: headerTimeout,
			ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
				if peerIn(o.Upstream, trusted) {
					return proxyproto.REQUIRE, nil
				}
				return proxyproto.REJECT, nil
			},
		},
		log: log,
	}
}

// refusalLogEvery bounds how often a refused connection is logged.
const refusalLogEvery = 10 * time.Second

type refusalLogger struct {
	net.Listener
	log  *slog.Logger
	last atomic.Int64 // unix nanoseconds of the last line
}

func (l *refusalLogger) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	pc, ok := c.(*proxyproto.Conn)
	if !ok {
		return c, nil
	}
	return &refusalConn{Conn: pc, raw: pc.Raw().RemoteAddr(), l: l}, nil
}

type refusalConn struct {
	net.Conn
	raw  net.Addr
	l    *refusalLogger
	once sync.Once
}

func (c *refusalConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil {
		c.once.Do(func() { c.l.refused(c.raw, err) })
	}
	return n, err
}

func (l *refusalLogger) refused(peer net.Addr, err error) {
	var reason string
	switch {
	case errors.Is(err, proxyproto.ErrNoProxyProtocol):
		reason = "a peer listed in proxy_protocol.trusted sent no PROXY header (is the load balancer set to send it?)"
	case errors.Is(err, proxyproto.ErrSuperfluousProxyHeader):
		reason = "a peer not listed in proxy_protocol.trusted sent a PROXY header"
	default:
		var ne net.Error
		if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
			return // an ordinary close or timeout, not a refusal
		}
		reason = "invalid PROXY header"
	}
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(refusalLogEvery) || !l.last.CompareAndSwap(last, now) {
		return
	}
	l.log.Warn("PROXY protocol: connection refused", "reason", reason, "peer", peer.String(), "err", err.Error())
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
