package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

// The session index: every network session, in memory, so that the
// identity lookup (SessionFor) reads no SQLite. The network_sessions table
// stays the durable copy and the truth; the index is a copy that must never
// say more or other than the table (a wrong entry identifies the wrong
// subscriber), and when it cannot be sure of that it is not used.
//
//   - It is built from a snapshot of the table: at Open (in the background,
//     so Open does not wait for it) and whenever it was dropped. Until it is
//     built, SessionFor reads SQLite as before (sessionForSQL).
//   - This process's own writes change it only after their batch committed:
//     each session write records what it did (the row as stored, or what
//     it deleted, and how many rows it changed) and the writer applies
//     that after COMMIT, before the caller is answered (writeThen). A failed
//     op or a batch that did not commit changes nothing in memory.
//   - Another process (the CLI, a second server, sqlite3) can change the
//     table too. SQLite's data_version, read on the writer's connection,
//     changes exactly when another connection committed to the file (this
//     process's read connections never write). Every sessionPoll the
//     maintainer reads it between two batches (holding the writer's seq):
//     if it moved since the index's snapshot, the index is dropped at once
//     and lookups read SQLite again until it is rebuilt. A lookup can so be
//     stale after another process's change by at most sessionPoll plus
//     the one write batch the check waits for (typically milliseconds);
//     never after this process's own writes. Any other process's commit
//     counts, sessions or not (a client added with the CLI too): a rebuild
//     more than needed, never one less, and no cost on the write path (a
//     trigger-kept change counter was measured at about 2.5 µs of CPU per
//     session row written).
//   - While lookups read the table (the index being built, or dropped),
//     the prefix lengths they probe (lengths.go) are read again every
//     sessionPoll and at the moment of a drop, so that a longer prefix
//     another process added inside a shorter one is not answered with the
//     shorter one's subscriber.
//   - The index also checks itself: a Stop, purge or expiry whose row count
//     differs from what the index holds, or a refused upsert the index
//     would have allowed, drops it the same way.
//
// A rebuild reads data_version and takes the snapshot (a read transaction
// on the index's own connection) while holding seq, logs the effects of
// the writes committed after it, reads the rows outside seq, then, holding
// seq again, installs the result with the log replayed if data_version has
// not moved (no other process committed since the snapshot); otherwise it
// gives up and tries again later (rebuildGap, doubling while other
// processes keep writing).
//
// Rows the SQL lookup can never match (a prefix that is not canonical, or
// whose bits column disagrees with it: never written by numbergate) are
// left out.

// sessionPoll is how often the maintainer checks that no other process
// wrote: with one write batch, the bound on how long another process's
// change to sessions can go unseen by lookups.
const sessionPoll = 100 * time.Millisecond

// rebuildGap is the least time between the starts of two builds. It
// doubles, up to maxRebuildGap, while builds fail or indexes are dropped
// within maxRebuildGap of their install (a second process writing to the
// same file all the time would otherwise keep this one rebuilding; lookups
// read SQLite meanwhile).
const (
	rebuildGap    = time.Second
	maxRebuildGap = time.Minute
)

// maxReplay bounds the writes logged during one build; past it the build
// is abandoned (and retried later).
const maxReplay = 1 << 20

// deleteChunk is how many entries a purge or expiry deletes per hold of
// the lock lookups take, so that a large delete never stalls them long.
const deleteChunk = 256

var errNoSession = fmt.Errorf("sqlite: session for: %w", nv.ErrNotFound)

// sessEntry is one session without its prefix (the map key): 32 bytes and
// one allocation (blob).
type sessEntry struct {
	started, updated int64
	// blob holds client, msisdn, session id, NAS and IMSI, each as a
	// uvarint length and its bytes.
	blob string
}

func packSession(buf []byte, client, msisdn, sid, nas, imsi []byte, started, updated int64) ([]byte, sessEntry) {
	buf = buf[:0]
	for _, f := range [...][]byte{client, msisdn, sid, nas, imsi} {
		buf = binary.AppendUvarint(buf, uint64(len(f)))
		buf = append(buf, f...)
	}
	return buf, sessEntry{started: started, updated: updated, blob: string(buf)}
}

func entryOf(ns nv.NetworkSession, started int64) sessEntry {
	fields := [...]string{ns.Client, string(ns.MSISDN), ns.SessionID, ns.NAS, ns.IMSI}
	n := 0
	for _, f := range fields {
		n += binary.MaxVarintLen64 + len(f)
	}
	var b strings.Builder
	b.Grow(n)
	var l [binary.MaxVarintLen64]byte
	for _, f := range fields {
		b.Write(binary.AppendUvarint(l[:0], uint64(len(f))))
		b.WriteString(f)
	}
	return sessEntry{started: started, updated: unixNano(ns.UpdatedAt), blob: b.String()}
}

// next splits the first field off b.
func next(b string) (string, string) {
	var n uint64
	var k int
	for shift := 0; ; shift += 7 {
		if k >= len(b) || shift > 63 {
			return "", "" // never: blobs are built by packSession
		}
		c := b[k]
		k++
		n |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
	}
	if uint64(len(b)-k) < n {
		return "", ""
	}
	return b[k : k+int(n)], b[k+int(n):]
}

func (e *sessEntry) client() string {
	c, _ := next(e.blob)
	return c
}

func (e *sessEntry) sessionID() string {
	_, rest := next(e.blob)
	_, rest = next(rest)
	sid, _ := next(rest)
	return sid
}

func (e *sessEntry) session(p netip.Prefix) nv.NetworkSession {
	client, rest := next(e.blob)
	msisdn, rest := next(rest)
	sid, rest := next(rest)
	nas, rest := next(rest)
	imsi, _ := next(rest)
	return nv.NetworkSession{
		Prefix: p, MSISDN: nv.PhoneNumber(msisdn), SessionID: sid, NAS: nas, IMSI: imsi,
		StartedAt: fromUnixNano(e.started), UpdatedAt: fromUnixNano(e.updated), Client: client,
	}
}

type addr6 struct{ hi, lo uint64 }

// sessMaps holds the entries by prefix: one map per prefix length in use,
// keyed by the masked address.
type sessMaps struct {
	v4         [33]map[uint32]sessEntry
	v6         [129]map[addr6]sessEntry
	len4, len6 []int // lengths with a map, longest first
}

func mask4(a uint32, bits int) uint32 { return a & (^uint32(0) << (32 - bits)) }

func mask6(a addr6, bits int) addr6 {
	if bits <= 64 {
		return addr6{a.hi & (^uint64(0) << (64 - bits)), 0}
	}
	return addr6{a.hi, a.lo & (^uint64(0) << (128 - bits))}
}

func key4(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func key6(a netip.Addr) addr6 {
	b := a.As16()
	return addr6{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func prefix4(k uint32, bits int) netip.Prefix {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], k)
	return netip.PrefixFrom(netip.AddrFrom4(b), bits)
}

func prefix6(k addr6, bits int) netip.Prefix {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.hi)
	binary.BigEndian.PutUint64(b[8:], k.lo)
	return netip.PrefixFrom(netip.AddrFrom16(b), bits)
}

// lookup returns the longest-prefix entry for a (canonical) updated at or
// after notBefore, as the SQL lookup does.
func (m *sessMaps) lookup(a netip.Addr, notBefore int64) (nv.NetworkSession, bool) {
	if a.Is4() {
		k := key4(a)
		for _, bits := range m.len4 {
			mk := mask4(k, bits)
			if e, ok := m.v4[bits][mk]; ok && e.updated >= notBefore {
				return e.session(prefix4(mk, bits)), true
			}
		}
		return nv.NetworkSession{}, false
	}
	k := key6(a)
	for _, bits := range m.len6 {
		mk := mask6(k, bits)
		if e, ok := m.v6[bits][mk]; ok && e.updated >= notBefore {
			return e.session(prefix6(mk, bits)), true
		}
	}
	return nv.NetworkSession{}, false
}

// get, set and del take a canonical prefix.
func (m *sessMaps) get(p netip.Prefix) (sessEntry, bool) {
	bits := p.Bits()
	if p.Addr().Is4() {
		e, ok := m.v4[bits][key4(p.Addr())]
		return e, ok
	}
	e, ok := m.v6[bits][key6(p.Addr())]
	return e, ok
}

func (m *sessMaps) set(p netip.Prefix, e sessEntry) {
	bits := p.Bits()
	if p.Addr().Is4() {
		if m.v4[bits] == nil {
			m.v4[bits] = map[uint32]sessEntry{}
			m.len4 = addLength(m.len4, bits)
		}
		m.v4[bits][key4(p.Addr())] = e
		return
	}
	if m.v6[bits] == nil {
		m.v6[bits] = map[addr6]sessEntry{}
		m.len6 = addLength(m.len6, bits)
	}
	m.v6[bits][key6(p.Addr())] = e
}

// len is how many sessions m holds.
func (m *sessMaps) len() int {
	n := 0
	for _, bits := range m.len4 {
		n += len(m.v4[bits])
	}
	for _, bits := range m.len6 {
		n += len(m.v6[bits])
	}
	return n
}

// addLength returns a new slice (lookups may hold the old one).
func addLength(ls []int, bits int) []int {
	ls = append(slices.Clone(ls), bits)
	slices.SortFunc(ls, func(a, b int) int { return b - a })
	return ls
}

func (m *sessMaps) del(p netip.Prefix) {
	if p.Addr().Is4() {
		delete(m.v4[p.Bits()], key4(p.Addr()))
		return
	}
	delete(m.v6[p.Bits()], key6(p.Addr()))
}

// matching lists the prefixes of the entries keep selects.
func (m *sessMaps) matching(keep func(*sessEntry) bool) []netip.Prefix {
	var out []netip.Prefix
	for _, bits := range m.len4 {
		for k, e := range m.v4[bits] {
			if keep(&e) {
				out = append(out, prefix4(k, bits))
			}
		}
	}
	for _, bits := range m.len6 {
		for k, e := range m.v6[bits] {
			if keep(&e) {
				out = append(out, prefix6(k, bits))
			}
		}
	}
	return out
}

// Effects of session writes, recorded by the op, applied after commit.
const (
	effPut    = iota + 1 // n rows (0 or 1) now hold e at p
	effStop              // n rows (0 or 1) at p with session id sid and client client or '' deleted
	effPurge             // n rows of client client updated before before deleted
	effExpire            // n rows updated before before deleted
)

type sessEffect struct {
	kind   int
	n      int64 // rows the statement changed
	p      netip.Prefix
	e      sessEntry
	client string
	sid    string
	before int64
}

// Index states (guarded by the writer's seq).
const (
	idxOff      = iota // not used: lookups read SQLite
	idxBuilding        // a snapshot is being read; committed effects are logged
	idxReady           // lookups read cur
)

type sessionIndex struct {
	mu  sync.RWMutex // lookups read-lock; changes to cur and its maps lock
	cur *sessMaps    // nil unless ready

	// Guarded by the writer's seq: the writer's after funcs and the
	// maintainer holding it.
	state int
	dv    int64 // the writer connection's data_version cur stands for
	log   []sessEffect
	build int

	ready     atomic.Bool
	kick      chan struct{}
	builds    atomic.Uint64 // indexes installed
	drops     atomic.Uint64 // ready indexes dropped
	lastDrop  atomic.Pointer[string]
	buildTime atomic.Int64 // nanoseconds the last installed build took
}

// get is the lookup: ok false when no session matches; ready false when
// the index is not in use (the caller reads SQLite).
func (x *sessionIndex) get(a netip.Addr, notBefore int64) (ns nv.NetworkSession, ok, ready bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.cur == nil {
		return nv.NetworkSession{}, false, false
	}
	ns, ok = x.cur.lookup(a, notBefore)
	return ns, ok, true
}

// committed is the after func of every session write: it runs on the
// writer, holding seq, after the batch committed.
func (x *sessionIndex) committed(e *sessEffect) {
	defer func() {
		if r := recover(); r != nil {
			x.off(fmt.Sprintf("panic applying a committed write: %v", r))
		}
	}()
	switch x.state {
	case idxReady:
		if err := x.apply(x.cur, e); err != nil {
			x.off(err.Error())
		}
	case idxBuilding:
		if len(x.log) >= maxReplay {
			x.off("too many writes during a rebuild")
			return
		}
		x.log = append(x.log, *e)
	}
}

// apply changes m as e changed the table, checking that m agrees with what
// the table did. m is cur (then changes take mu) or a build not yet in use.
func (x *sessionIndex) apply(m *sessMaps, e *sessEffect) error {
	switch e.kind {
	case effPut:
		if e.n == 0 {
			// A refused upsert: the table holds the prefix for another client.
			if old, ok := m.get(e.p); !ok || old.client() == e.client || old.client() == "" {
				return fmt.Errorf("an upsert the index would have allowed was refused")
			}
			return nil
		}
		x.mu.Lock()
		m.set(e.p, e.e)
		x.mu.Unlock()
	case effStop:
		old, ok := m.get(e.p)
		held := ok && old.sessionID() == e.sid && (old.client() == e.client || old.client() == "")
		if held != (e.n == 1) {
			return fmt.Errorf("a stop removed %d sessions, the index held %v", e.n, held)
		}
		if e.n == 1 {
			x.mu.Lock()
			m.del(e.p)
			x.mu.Unlock()
		}
	case effPurge, effExpire:
		if e.n == 0 && e.kind == effExpire {
			return nil // the common sweep: nothing to scan for
		}
		gone := m.matching(func(s *sessEntry) bool {
			return s.updated < e.before && (e.kind == effExpire || s.client() == e.client)
		})
		if int64(len(gone)) != e.n {
			return fmt.Errorf("a purge or expiry removed %d sessions, the index held %d", e.n, len(gone))
		}
		for c := range slices.Chunk(gone, deleteChunk) {
			x.mu.Lock()
			for _, p := range c {
				m.del(p)
			}
			x.mu.Unlock()
		}
	}
	return nil
}

// off stops using the index (seq held): lookups read SQLite until a
// rebuild installs a new one.
func (x *sessionIndex) off(reason string) {
	if x.state == idxReady {
		x.drops.Add(1)
		x.lastDrop.Store(&reason)
	}
	x.mu.Lock()
	x.cur = nil
	x.mu.Unlock()
	x.ready.Store(false)
	x.state, x.log = idxOff, nil
	select {
	case x.kick <- struct{}{}:
	default:
	}
}

// maintainSessionIndex builds the index, rebuilds it when it was dropped,
// and checks every sessionPoll that no other process wrote, until ctx
// ends.
func (s *Store) maintainSessionIndex(ctx context.Context) {
	x := &s.sidx
	t := time.NewTicker(sessionPoll)
	defer t.Stop()
	var last, installed time.Time
	gap := rebuildGap
	for {
		if !x.ready.Load() {
			// Lookups read the table meanwhile: keep the lengths they
			// probe as fresh as the index would be (lengths.go reads them
			// only every lengthsRefresh).
			_ = s.loadLengths(ctx) // a failed read marks the set stale: every length is probed
			if last.IsZero() || time.Since(last) >= gap {
				if !installed.IsZero() && time.Since(installed) < maxRebuildGap {
					gap = min(2*gap, maxRebuildGap) // dropped soon after its install
				} else if !installed.IsZero() {
					gap = rebuildGap
				}
				last, installed = time.Now(), time.Time{}
				if err := s.buildSessionIndex(ctx); err != nil {
					gap = min(2*gap, maxRebuildGap) // lookups read SQLite meanwhile
				} else {
					installed = time.Now()
				}
			}
		} else {
			s.checkSessionIndex(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-x.kick:
		}
	}
}

// dataVersion reads data_version on the writer's connection; seq held (the
// writer is between batches).
func (s *Store) dataVersion() (int64, error) {
	var v int64
	// Not the caller's context: an interrupt must not reach the writer's
	// connection. The pragma reads the shared-memory index, no I/O.
	err := s.wr.conn.QueryRowContext(context.Background(), "PRAGMA data_version").Scan(&v)
	return v, err
}

// checkSessionIndex drops the index if another process committed since
// its snapshot.
func (s *Store) checkSessionIndex(ctx context.Context) {
	x := &s.sidx
	s.wr.seq.Lock()
	if x.state != idxReady {
		s.wr.seq.Unlock()
		return
	}
	v, err := s.dataVersion()
	if err != nil {
		x.off("data_version unreadable: " + err.Error())
		s.wr.seq.Unlock()
		return
	}
	moved := v != x.dv
	s.wr.seq.Unlock()
	if !moved {
		return
	}
	// The table lookup probes the lengths in use: read them first, so
	// that it also probes one the other process used first (else, for up
	// to lengthsRefresh, a new longer prefix inside a shorter one would be
	// answered with the shorter one's subscriber). Read without holding
	// seq: a read waits for the read pool, and the writer must not wait
	// with it.
	_ = s.loadLengths(ctx) // a failed read marks the set stale: every length is probed
	s.wr.seq.Lock()
	defer s.wr.seq.Unlock()
	if x.state == idxReady {
		x.off("another process wrote to the database")
	}
}

// buildSessionIndex reads the table into a new index and installs it.
func (s *Store) buildSessionIndex(ctx context.Context) error {
	x := &s.sidx
	start := time.Now()
	tx, err := s.ix.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	s.wr.seq.Lock()
	// data_version first, then the snapshot: a commit in between is in
	// the snapshot and moves data_version, so the build is (needlessly)
	// given up; the other order could miss it.
	dv, err := s.dataVersion()
	if err == nil {
		var exists bool
		err = tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM network_sessions)").Scan(&exists) // the snapshot starts here
	}
	if err == nil {
		x.off("rebuild")
		x.state = idxBuilding
		x.build++
	}
	id := x.build
	s.wr.seq.Unlock()
	if err != nil {
		return fmt.Errorf("session index: snapshot: %w", err)
	}
	m, err := loadSessMaps(ctx, tx)
	tx.Rollback()
	s.wr.seq.Lock()
	defer s.wr.seq.Unlock()
	if x.state != idxBuilding || x.build != id {
		return errors.New("session index: build abandoned")
	}
	if err != nil {
		x.off("build failed")
		return fmt.Errorf("session index: %w", err)
	}
	now, err := s.dataVersion()
	if err != nil {
		x.off("build failed")
		return fmt.Errorf("session index: %w", err)
	}
	if now != dv {
		x.off("another process wrote to the database during the build")
		return errors.New("session index: another process wrote to the database during the build")
	}
	for i := range x.log {
		if err := x.apply(m, &x.log[i]); err != nil {
			x.off("replay: " + err.Error())
			return fmt.Errorf("session index: replay: %w", err)
		}
	}
	x.mu.Lock()
	x.cur = m
	x.mu.Unlock()
	x.state, x.dv, x.log = idxReady, dv, nil
	x.ready.Store(true)
	x.builds.Add(1)
	x.buildTime.Store(int64(time.Since(start)))
	return nil
}

// loadSessMaps reads every session row of tx's snapshot.
func loadSessMaps(ctx context.Context, tx *sql.Tx) (*sessMaps, error) {
	rows, err := tx.QueryContext(ctx,
		"SELECT prefix, bits, client, msisdn, session_id, nas, imsi, started_at, updated_at FROM network_sessions")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := &sessMaps{}
	var (
		prefix, client, msisdn, sid, nas, imsi sql.RawBytes
		bits                                   int
		started, updated                       int64
		buf, text                              []byte
	)
	for rows.Next() {
		if err := rows.Scan(&prefix, &bits, &client, &msisdn, &sid, &nas, &imsi, &started, &updated); err != nil {
			return nil, err
		}
		p, err := netip.ParsePrefix(string(prefix))
		if err != nil || p != nv.CanonicalPrefix(p) || p.Bits() != bits {
			continue // the SQL lookup never matches it either
		}
		if text = p.AppendTo(text[:0]); string(text) != string(prefix) {
			continue // not the text a lookup's candidate has
		}
		var e sessEntry
		buf, e = packSession(buf, client, msisdn, sid, nas, imsi, started, updated)
		m.set(p, e)
	}
	return m, rows.Err()
}

// SessionIndexStats describes the in-memory session index.
type SessionIndexStats struct {
	Ready    bool   // lookups are served from memory
	Sessions int    // sessions held (when Ready)
	Builds   uint64 // indexes built and installed
	Drops    uint64 // indexes dropped (another process's change, a failed check)
	LastDrop string // why the last one was dropped
	// LastBuild is how long the last installed build took.
	LastBuild time.Duration
}

// SessionIndexStats returns the session index's state and counters.
func (s *Store) SessionIndexStats() SessionIndexStats {
	x := &s.sidx
	st := SessionIndexStats{Builds: x.builds.Load(), Drops: x.drops.Load(), LastBuild: time.Duration(x.buildTime.Load())}
	if r := x.lastDrop.Load(); r != nil {
		st.LastDrop = *r
	}
	x.mu.RLock()
	if x.cur != nil {
		st.Ready, st.Sessions = true, x.cur.len()
	}
	x.mu.RUnlock()
	return st
}
