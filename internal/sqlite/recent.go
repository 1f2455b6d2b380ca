package sqlite

import (
	"sync"
	"time"
)

// recent holds what this process wrote and expects to read back soon (the
// client of a token it stored, a grant it created), so that the read needs
// no query. Only the writer changes it, after the commit of the write it
// reflects (writeThen), so it never holds what the database does not; what
// is dropped or rotated out is read from the database again. Two
// generations bound it: entries go into cur; when cur holds max entries, or
// gen has passed since the last rotation, prev is dropped and cur becomes
// prev, so at most 2 x max entries are held. Callers check the expiry that
// their values carry.
type recent[K comparable, V any] struct {
	max int
	gen time.Duration

	mu        sync.RWMutex
	cur, prev map[K]V
	rotated   time.Time
}

func (r *recent[K, V]) put(k K, v V, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil || len(r.cur) >= r.max || now.Sub(r.rotated) >= r.gen {
		r.prev, r.cur, r.rotated = r.cur, make(map[K]V), now
	}
	r.cur[k] = v
}

func (r *recent[K, V]) get(k K) (V, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.cur[k]
	if !ok {
		v, ok = r.prev[k]
	}
	return v, ok
}

func (r *recent[K, V]) del(k K) {
	r.mu.Lock()
	delete(r.cur, k)
	delete(r.prev, k)
	r.mu.Unlock()
}

// clear forgets every entry.
func (r *recent[K, V]) clear() {
	r.mu.Lock()
	r.cur, r.prev = nil, nil
	r.mu.Unlock()
}
