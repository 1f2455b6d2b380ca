package sqlite

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/numbergate/numbergate/internal/callctx"
)

// sessionLengths is the set of prefix lengths network sessions use, per
// address family, longest first: the table lookup (sessionForSQL) probes
// only those. The session_lengths table (migration 7) is its durable form,
// kept by a trigger on every insert, by any process; this process adds the
// length of each of its own writes before the write, reads the table at
// Open and every lengthsRefresh, and, while lookups read the table rather
// than the session index, every sessionPoll and at the moment the index is
// dropped (sessionindex.go). A length another process used first is so
// probed within that delay; until then a lookup at that length misses, or,
// where a shorter prefix holds the same address, answers with the shorter
// prefix's subscriber, as a lookup in a not yet dropped index would. The
// set never shrinks.
//
// A failed read of the table marks the set stale: lookups then probe every
// length of the family (slower, never wrong) until a read succeeds, since
// the read that failed may have been the one that would have added a
// longer prefix inside a shorter one.
type sessionLengths struct {
	mu    sync.Mutex // serializes writers of cur
	cur   atomic.Pointer[lengthSet]
	stale atomic.Bool // the last read of the table failed
}

type lengthSet struct{ v4, v6 []int } // longest first

// lengthsRefresh is how often the set is read again from the table.
const lengthsRefresh = time.Second

func (l *sessionLengths) of(a netip.Addr) []int {
	set := l.cur.Load()
	if set == nil || l.stale.Load() {
		if a.Is4() {
			return all4
		}
		return all6
	}
	if a.Is4() {
		return set.v4
	}
	return set.v6
}

// all4 and all6 are every length of a family, longest first: what a lookup
// probes before the set is loaded or while it is stale.
var all4, all6 = allLengths(32), allLengths(128)

func allLengths(bitLen int) []int {
	out := make([]int, 0, bitLen+1)
	for b := bitLen; b >= 0; b-- {
		out = append(out, b)
	}
	return out
}

// add records the length of p (canonical).
func (l *sessionLengths) add(p netip.Prefix) {
	set := l.cur.Load()
	if set != nil && slices.Contains(pick(set, p.Addr().Is6()), p.Bits()) {
		return
	}
	l.merge(p.Addr().Is6(), []int{p.Bits()})
}

func pick(set *lengthSet, v6 bool) []int {
	if v6 {
		return set.v6
	}
	return set.v4
}

// merge adds lengths of one family to the set.
func (l *sessionLengths) merge(v6 bool, bits []int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.cur.Load()
	next := &lengthSet{}
	if old != nil {
		next.v4, next.v6 = old.v4, old.v6
	}
	cur := pick(next, v6)
	for _, b := range bits {
		if !slices.Contains(cur, b) {
			cur = append(slices.Clone(cur), b)
		}
	}
	slices.SortFunc(cur, func(a, b int) int { return b - a })
	if v6 {
		next.v6 = cur
	} else {
		next.v4 = cur
	}
	l.cur.Store(next)
}

// loadLengths reads the table into the set (a union with what is there);
// a failure leaves the set stale until a read succeeds.
func (s *Store) loadLengths(ctx context.Context) (err error) {
	defer func() { s.lengths.stale.Store(err != nil) }()
	rows, err := s.query(ctx, "SELECT v6, bits FROM session_lengths")
	if err != nil {
		return err
	}
	defer rows.Close()
	var v4, v6 []int
	for rows.Next() {
		var is6 bool
		var bits int
		if err := rows.Scan(&is6, &bits); err != nil {
			return err
		}
		if is6 {
			v6 = append(v6, bits)
		} else {
			v4 = append(v4, bits)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	s.lengths.merge(false, v4)
	s.lengths.merge(true, v6)
	return nil
}

// refreshLengths reads the table every lengthsRefresh until stop is closed.
func (s *Store) refreshLengths(stop <-chan struct{}) {
	callctx.Every(stop, lengthsRefresh, func(ctx context.Context) {
		_ = s.loadLengths(ctx) // a failed read marks the set stale
	})
}
