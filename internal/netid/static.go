package netid

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/numbergate/numbergate/internal/nv"
)

// Static resolves addresses from the static network map (prefix -> number)
// kept in an nv.StaticRouteStore. The longest matching prefix wins.
//
// The map is read from the store once and kept in memory: with 1000 routes
// a lookup in the cached table takes about 50 ns, reading them from SQLite
// on every /authorize about 850 us (BenchmarkStaticSQLite), for data that
// only changes with the config (serve replaces it at start). Reload re-reads
// it.
type Static struct {
	store nv.StaticRouteStore

	mu    sync.RWMutex
	table *routeTable
}

// NewStatic returns a Static source over store. The map is loaded on first
// use (or by Reload).
func NewStatic(store nv.StaticRouteStore) *Static {
	return &Static{store: store}
}

// Name implements Source.
func (s *Static) Name() string { return nv.SourceStatic }

// Reload reads the map from the store.
func (s *Static) Reload(ctx context.Context) error {
	routes, err := s.store.StaticRoutes(ctx)
	if err != nil {
		return fmt.Errorf("static routes: %w", err)
	}
	t := newRouteTable(routes)
	s.mu.Lock()
	s.table = t
	s.mu.Unlock()
	return nil
}

// Resolve implements nv.Resolver.
func (s *Static) Resolve(ctx context.Context, c nv.Connection) (nv.Identity, error) {
	s.mu.RLock()
	t := s.table
	s.mu.RUnlock()
	if t == nil {
		if err := s.Reload(ctx); err != nil {
			return nv.Identity{}, err
		}
		s.mu.RLock()
		t = s.table
		s.mu.RUnlock()
	}
	n, ok := t.lookup(c.Addr.Addr())
	if !ok {
		return nv.Identity{}, nv.ErrUnknownDevice
	}
	return nv.Identity{MSISDN: n, Method: nv.AuthNetwork, Source: nv.SourceStatic}, nil
}

// routeTable is a longest-prefix-match table: one map per prefix length,
// probed from the longest length down.
type routeTable struct {
	bits   []int // distinct prefix lengths, longest first
	routes map[netip.Prefix]nv.PhoneNumber
}

func newRouteTable(routes []nv.StaticRoute) *routeTable {
	t := &routeTable{routes: make(map[netip.Prefix]nv.PhoneNumber, len(routes))}
	seen := map[int]bool{}
	for _, r := range routes {
		p := nv.CanonicalPrefix(r.Prefix)
		if !p.IsValid() {
			continue
		}
		t.routes[p] = r.MSISDN
		key := p.Bits()
		if p.Addr().Is6() {
			key += 1000 // keep IPv4 and IPv6 lengths apart
		}
		if !seen[key] {
			seen[key] = true
			t.bits = append(t.bits, key)
		}
	}
	slices.SortFunc(t.bits, func(a, b int) int { return b - a })
	return t
}

func (t *routeTable) lookup(addr netip.Addr) (nv.PhoneNumber, bool) {
	addr = addr.Unmap().WithZone("")
	if !addr.IsValid() {
		return "", false
	}
	off := 0
	if addr.Is6() {
		off = 1000
	}
	for _, key := range t.bits {
		if (key >= 1000) != addr.Is6() {
			continue
		}
		p, err := addr.Prefix(key - off)
		if err != nil {
			continue
		}
		if n, ok := t.routes[p]; ok {
			return n, true
		}
	}
	return "", false
}
