package sqlite

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// sessionLengths is the set of prefix lengths network sessions use, per
// address family, longest first: SessionFor probes only those. The
// session_lengths table (migration 7) is its durable form, kept by a
// trigger on every insert, by any process; this process adds the length of
// each of its own writes before the write, reads the table at Open, and
// reads it again every lengthsRefresh, so a length first used by another
// process is probed within that delay (until then a lookup at that length
// misses: the device is not identified, never misidentified). The set
// never shrinks.
type sessionLengths struct {
	mu  sync.Mutex // serializes writers of cur
	cur atomic.Pointer[lengthSet]
}

type lengthSet struct{ v4, v6 []int } // longest first

// lengthsRefresh is how often the set is read again from the table.
const lengthsRefresh = time.Second

func (l *sessionLengths) of(a netip.Addr) []int {
	set := l.cur.Load()
	if set == nil {
		return allLengths(a)
	}
	if a.Is4() {
		return set.v4
	}
	return set.v6
}

// allLengths is every length of a's family, longest first (before the set
// is loaded).
func allLengths(a netip.Addr) []int {
	out := make([]int, 0, a.BitLen()+1)
	for b := a.BitLen(); b >= 0; b-- {
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

// load reads the table into the set (a union with what is there).
func (s *Store) loadLengths(ctx context.Context) error {
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
	t := time.NewTicker(lengthsRefresh)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), lengthsRefresh)
			_ = s.loadLengths(ctx) // a failed read keeps the set as it is
			cancel()
		}
	}
}
