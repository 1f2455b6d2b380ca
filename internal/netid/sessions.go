package netid

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

// RADIUS resolves an address from the network sessions learnt from RADIUS
// accounting (package radius). A session not updated for IdleTimeout is
// ignored (zero: no idle limit).
type RADIUS struct {
	store       nv.NetworkSessionStore
	IdleTimeout time.Duration
	// Now is used when the connection carries no time.
	Now func() time.Time
}

// NewRADIUS returns a RADIUS source over store.
func NewRADIUS(store nv.NetworkSessionStore, idleTimeout time.Duration) *RADIUS {
	return &RADIUS{store: store, IdleTimeout: idleTimeout, Now: time.Now}
}

// Name implements Source.
func (r *RADIUS) Name() string { return nv.SourceRADIUS }

// Resolve implements nv.Resolver.
func (r *RADIUS) Resolve(ctx context.Context, c nv.Connection) (nv.Identity, error) {
	n, err := sessionNumber(ctx, r.store, c.Addr.Addr(), at(c, r.Now), r.IdleTimeout)
	if err != nil {
		return nv.Identity{}, err
	}
	return nv.Identity{MSISDN: n, Method: nv.AuthNetwork, Source: nv.SourceRADIUS}, nil
}

// CGNAT resolves a connection seen behind carrier NAT: the public address
// and port at the connection's time map to the private address that held
// that port (package cgnat records the allocations), whose RADIUS session
// gives the number. A connection without a port is not for this source.
type CGNAT struct {
	store       nv.NetworkSessionStore
	IdleTimeout time.Duration
	Now         func() time.Time
}

// NewCGNAT returns a CGNAT source over store.
func NewCGNAT(store nv.NetworkSessionStore, idleTimeout time.Duration) *CGNAT {
	return &CGNAT{store: store, IdleTimeout: idleTimeout, Now: time.Now}
}

// Name implements Source.
func (g *CGNAT) Name() string { return nv.SourceCGNAT }

// Resolve implements nv.Resolver.
func (g *CGNAT) Resolve(ctx context.Context, c nv.Connection) (nv.Identity, error) {
	addr := c.Addr.Addr().Unmap().WithZone("")
	if c.Addr.Port() == 0 || !addr.IsValid() {
		return nv.Identity{}, nv.ErrUnknownDevice
	}
	t := at(c, g.Now)
	private, err := g.store.PrivateAddrFor(ctx, netip.AddrPortFrom(addr, c.Addr.Port()), t)
	if errors.Is(err, nv.ErrNotFound) {
		return nv.Identity{}, nv.ErrUnknownDevice
	}
	if err != nil {
		return nv.Identity{}, err
	}
	n, err := sessionNumber(ctx, g.store, private, t, g.IdleTimeout)
	if err != nil {
		return nv.Identity{}, err
	}
	return nv.Identity{MSISDN: n, Method: nv.AuthNetwork, Source: nv.SourceCGNAT}, nil
}

func at(c nv.Connection, now func() time.Time) time.Time {
	if !c.At.IsZero() {
		return c.At
	}
	if now == nil {
		return time.Now()
	}
	return now()
}

func sessionNumber(ctx context.Context, store nv.NetworkSessionStore, addr netip.Addr, t time.Time, idle time.Duration) (nv.PhoneNumber, error) {
	addr = addr.Unmap().WithZone("")
	if !addr.IsValid() {
		return "", nv.ErrUnknownDevice
	}
	var notBefore time.Time
	if idle > 0 {
		notBefore = t.Add(-idle)
	}
	s, err := store.SessionFor(ctx, addr, notBefore)
	if errors.Is(err, nv.ErrNotFound) {
		return "", nv.ErrUnknownDevice
	}
	if err != nil {
		return "", err
	}
	return s.MSISDN, nil
}
