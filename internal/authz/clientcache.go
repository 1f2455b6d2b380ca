package authz

import (
	"slices"
	"sync"

	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/numbergate/numbergate/internal/nv"
)

// engineClients caches each client's engine form (engineClient parses the
// JWKS JSON), keyed by client id and checked against the nv.Client the store
// returns on every lookup: a client changed in the store (a rotated key, new
// redirect URIs or scopes) differs in a field the conversion reads, so it is
// converted again; an unchanged one costs a comparison of a few short
// slices. How fresh the nv.Client itself is, is the store's business (both
// stores cache clients under a change counter they poll, see
// internal/clientcache).
//
// The engine treats a *goidc.Client as read-only (it shares its static
// clients between requests the same way), so one conversion is handed to
// every request.
type engineClients struct {
	mu sync.RWMutex
	m  map[string]convertedClient
}

type convertedClient struct {
	src nv.Client // what it was converted from
	gc  *goidc.Client
}

// maxEngineClients bounds the cache; past it, it starts again empty.
const maxEngineClients = 10000

// get returns the engine form of c, converting it only when the cached one
// came from a different c.
func (e *engineClients) get(c nv.Client) (*goidc.Client, error) {
	e.mu.RLock()
	cc, ok := e.m[c.ID]
	e.mu.RUnlock()
	if ok && sameConversion(cc.src, c) {
		return cc.gc, nil
	}
	gc, err := engineClient(c)
	if err != nil {
		e.forget(c.ID)
		return nil, err
	}
	e.mu.Lock()
	if e.m == nil || len(e.m) >= maxEngineClients {
		e.m = map[string]convertedClient{}
	}
	e.m[c.ID] = convertedClient{src: c, gc: gc}
	e.mu.Unlock()
	return gc, nil
}

// forget drops the engine form of a client the store no longer has.
func (e *engineClients) forget(id string) {
	e.mu.Lock()
	delete(e.m, id)
	e.mu.Unlock()
}

// sameConversion reports whether a and b give the same engineClient: every
// field it reads is equal.
func sameConversion(a, b nv.Client) bool {
	return a.ID == b.ID && a.CreatedAt.Unix() == b.CreatedAt.Unix() &&
		slices.Equal(a.JWKS, b.JWKS) &&
		slices.Equal(a.RedirectURIs, b.RedirectURIs) &&
		slices.Equal(a.Scopes, b.Scopes) &&
		(len(a.Purposes) > 0) == (len(b.Purposes) > 0)
}
