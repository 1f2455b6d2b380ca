package netid

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

// fakeStore is an in-memory nv.NetworkSessionStore and nv.StaticRouteStore.
type fakeStore struct {
	mu       sync.Mutex
	routes   []nv.StaticRoute
	sessions map[netip.Prefix]nv.NetworkSession
	blocks   []nv.PortBlock
	reads    int
	fail     error
}

func newFakeStore() *fakeStore {
	return &fakeStore{sessions: map[netip.Prefix]nv.NetworkSession{}}
}

func (f *fakeStore) ReplaceStaticRoutes(_ context.Context, routes []nv.StaticRoute) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes = append([]nv.StaticRoute(nil), routes...)
	return nil
}

func (f *fakeStore) StaticRoutes(context.Context) ([]nv.StaticRoute, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.fail != nil {
		return nil, f.fail
	}
	return append([]nv.StaticRoute(nil), f.routes...), nil
}

func (f *fakeStore) StartSession(_ context.Context, s nv.NetworkSession) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions[s.Prefix] = s
	return nil
}

func (f *fakeStore) UpsertSession(_ context.Context, s nv.NetworkSession) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if old, ok := f.sessions[s.Prefix]; ok && old.Client != s.Client && old.Client != "" {
		return nv.ErrNotFound
	}
	f.sessions[s.Prefix] = s
	return nil
}

func (f *fakeStore) StopSession(_ context.Context, client string, p netip.Prefix, id string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.sessions[p]; ok && s.Client == client && s.SessionID == id {
		delete(f.sessions, p)
		return true, nil
	}
	return false, nil
}

func (f *fakeStore) PurgeClient(_ context.Context, client string, before time.Time) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for p, s := range f.sessions {
		if s.Client == client && s.UpdatedAt.Before(before) {
			delete(f.sessions, p)
			n++
		}
	}
	return n, nil
}

func (f *fakeStore) SessionFor(_ context.Context, addr netip.Addr, notBefore time.Time) (nv.NetworkSession, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nv.NetworkSession{}, f.fail
	}
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, _ := addr.Prefix(bits)
	s, ok := f.sessions[p]
	if !ok || s.UpdatedAt.Before(notBefore) {
		return nv.NetworkSession{}, nv.ErrNotFound
	}
	return s, nil
}

func (f *fakeStore) NetworkSessions(context.Context) ([]nv.NetworkSession, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []nv.NetworkSession
	for _, s := range f.sessions {
		out = append(out, s)
	}
	return out, nil
}

func (f *fakeStore) ExpireSessions(_ context.Context, before time.Time) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for p, s := range f.sessions {
		if s.UpdatedAt.Before(before) {
			delete(f.sessions, p)
			n++
		}
	}
	return n, nil
}

func (f *fakeStore) AllocatePortBlock(_ context.Context, b nv.PortBlock) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blocks = append(f.blocks, b)
	return nil
}

func (f *fakeStore) ReleasePortBlock(_ context.Context, private, public netip.Addr, first, last uint16, at time.Time) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, b := range f.blocks {
		if b.Private == private && b.Public == public && b.FirstPort == first && b.LastPort == last && b.End.IsZero() {
			f.blocks[i].End = at
			return true, nil
		}
	}
	return false, nil
}

func (f *fakeStore) PrivateAddrFor(_ context.Context, public netip.AddrPort, at time.Time) (netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.blocks {
		if b.Public == public.Addr() && b.FirstPort <= public.Port() && public.Port() <= b.LastPort &&
			!at.Before(b.Start) && (b.End.IsZero() || at.Before(b.End)) {
			return b.Private, nil
		}
	}
	return netip.Addr{}, nv.ErrNotFound
}

var errDown = errors.New("store down")
