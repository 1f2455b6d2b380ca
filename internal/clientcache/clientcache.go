// Package clientcache is the in-memory client cache the store backends
// (SQLite, PostgreSQL) keep in front of their clients table: clients read
// under one value of a change counter that triggers bump on every insert,
// update, delete (and, in PostgreSQL, truncate) of the table, by any
// process or node. The backend reads the counter together with each row it
// caches (Put), after each change it makes itself (Check), and every
// Refresh in the background (Poll); whenever the counter has moved, every
// cached client is dropped, and whenever it cannot be read, the cache is
// dropped too and fills again only after a read succeeds (it fails closed).
package clientcache

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/numbergate/numbergate/internal/callctx"
	"github.com/numbergate/numbergate/internal/nv"
)

// Refresh is how often Poll reads the change counter: the bound on how
// long a client removed or changed by another process (or node) can still
// be served from the cache, on a machine not too loaded to run the poll on
// time.
const Refresh = 100 * time.Millisecond

// MaxClients bounds the cache; past it, it starts again empty.
const MaxClients = 10000

// ReadFunc reads the change counter.
type ReadFunc func(ctx context.Context) (int64, error)

// Cache holds clients read under one value of the change counter. The zero
// Cache is empty and ready.
type Cache struct {
	mu  sync.RWMutex
	gen int64 // the highest counter value seen; only grows
	m   map[string]nv.Client
	// unsure is set by Drop (the counter could not be read): nothing is
	// cached until a counter read succeeds (Advance), since a row read
	// before the drop may be older than gen says.
	unsure bool
}

// Get returns a copy of the cached client id.
func (c *Cache) Get(id string) (nv.Client, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	cl, ok := c.m[id]
	if !ok {
		return nv.Client{}, false
	}
	return cloneClient(cl), true
}

// Empty reports whether a poll has nothing to check: no client cached and
// no drop waiting for a counter read.
func (c *Cache) Empty() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m) == 0 && !c.unsure
}

// Advance records the counter value gen, just read: if it moved past the
// one the cache holds, every cached client is dropped. A lower value is a
// read that raced with a newer one, or a database that lost commits (a
// PostgreSQL failover to a standby that had not received them): the
// cached clients are dropped all the same, but the cache keeps the higher
// value, so it caches nothing read under a lower one (lookups read the
// database until the counter passes it again).
func (c *Cache) Advance(gen int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case gen > c.gen:
		c.gen, c.m, c.unsure = gen, nil, false
	case gen == c.gen:
		c.unsure = false
	default:
		c.m = nil
	}
}

// Put caches cl, read in the same snapshot as (or after) the counter value
// gen. A row read under an older counter than the cache holds, or while
// the cache is unsure, is not cached.
func (c *Cache) Put(gen int64, cl nv.Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen < c.gen || c.unsure {
		return
	}
	if gen > c.gen || c.m == nil || len(c.m) >= MaxClients {
		c.gen, c.m = gen, map[string]nv.Client{}
	}
	c.m[cl.ID] = cloneClient(cl)
}

// Drop empties the cache and caches nothing more until a counter read
// succeeds (the next poll, or the next own change): a read already under
// way may have read its row before a change the counter would show.
func (c *Cache) Drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m, c.unsure = nil, true
}

// Check reads the counter and advances to it; a failed read drops the
// cache. A store calls it after each change it makes to its clients
// (committed or not), so that its own change is seen by its next lookup
// rather than the next poll.
func (c *Cache) Check(ctx context.Context, read ReadFunc) error {
	gen, err := read(ctx)
	if err != nil {
		c.Drop()
		return err
	}
	c.Advance(gen)
	return nil
}

// Poll runs Check every Refresh, each read bounded by Refresh, until stop
// is closed; it reads nothing while the cache is Empty. A failed read
// drops the cache (fails closed): without the counter nothing says a
// cached client still exists or still has its keys, so lookups read the
// database until a poll succeeds again; otherwise a client removed
// elsewhere would authenticate for as long as the poll keeps failing (a
// busy pool, a slow disk, a database that does not answer).
func (c *Cache) Poll(stop <-chan struct{}, read ReadFunc) {
	callctx.Every(stop, Refresh, func(ctx context.Context) {
		if !c.Empty() { // else nothing to drop: no read at all
			_ = c.Check(ctx, read)
		}
	})
}

// cloneClient copies the slices so that no caller can change the cache.
func cloneClient(c nv.Client) nv.Client {
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.JWKS = slices.Clone(c.JWKS)
	c.Scopes = slices.Clone(c.Scopes)
	c.Purposes = slices.Clone(c.Purposes)
	return c
}
