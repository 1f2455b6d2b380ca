package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/storetest"
	"github.com/numbergate/numbergate/internal/testdisk"
)

// indexWait bounds a wait for the session index to be built or to see
// another process's change; generous, for a loaded machine: a rebuild may
// wait maxRebuildGap after indexes were dropped one after another (the
// designed bound for seeing a change is sessionPoll).
const indexWait = maxRebuildGap + 2*time.Minute

// waitIndex waits until the session index is in use.
func waitIndex(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(indexWait)
	for !s.SessionIndexStats().Ready {
		if time.Now().After(deadline) {
			t.Fatalf("session index not in use after %s: %+v", indexWait, s.SessionIndexStats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// indexed lists the sessions the index holds, by prefix (ok false when it
// is not in use).
func indexed(s *Store) (map[netip.Prefix]nv.NetworkSession, bool) {
	s.wr.seq.Lock()
	defer s.wr.seq.Unlock()
	x := &s.sidx
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.cur == nil {
		return nil, false
	}
	out := map[netip.Prefix]nv.NetworkSession{}
	for _, bits := range x.cur.len4 {
		for k, e := range x.cur.v4[bits] {
			p := prefix4(k, bits)
			out[p] = e.session(p)
		}
	}
	for _, bits := range x.cur.len6 {
		for k, e := range x.cur.v6[bits] {
			p := prefix6(k, bits)
			out[p] = e.session(p)
		}
	}
	return out, true
}

// sameAsTable fails the test if the index is in use and holds anything
// other than the table.
func sameAsTable(t *testing.T, s *Store, what string) {
	t.Helper()
	idx, ok := indexed(s)
	if !ok {
		return
	}
	rows, err := s.NetworkSessions(context.Background())
	if err != nil {
		t.Fatalf("%s: NetworkSessions: %v", what, err)
	}
	if len(rows) != len(idx) {
		t.Errorf("%s: the index holds %d sessions, the table %d", what, len(idx), len(rows))
	}
	for _, r := range rows {
		got, ok := idx[r.Prefix]
		if !ok {
			t.Errorf("%s: %v is in the table, not in the index", what, r.Prefix)
			continue
		}
		if got != r {
			t.Errorf("%s: the index holds %+v, the table %+v", what, got, r)
		}
	}
}

// indexedStore runs the conformance suite with lookups served by the
// index: it waits for the index before the test, and on Close checks that
// the index is still in use (own writes never drop it) and holds exactly
// the table.
type indexedStore struct {
	*Store
	t *testing.T
}

func (s indexedStore) Close() error {
	if st := s.SessionIndexStats(); !st.Ready || st.Drops != 0 {
		s.t.Errorf("session index after the test: %+v, want in use and never dropped", st)
	}
	sameAsTable(s.t, s.Store, "at Close")
	return s.Store.Close()
}

func TestStoreSessionIndex(t *testing.T) {
	storetest.Run(t, func(t *testing.T) nv.Store {
		s, err := Open(t.Context(), t.TempDir())
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		waitIndex(t, s)
		return indexedStore{s, t}
	})
}

func idxSession(prefix, msisdn, id, client string, updated int) nv.NetworkSession {
	at := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	return nv.NetworkSession{
		Prefix: netip.MustParsePrefix(prefix), MSISDN: nv.PhoneNumber(msisdn), SessionID: id,
		NAS: "nas-" + client, IMSI: "214010000000001", Client: client,
		StartedAt: at, UpdatedAt: at.Add(time.Duration(updated) * time.Second),
	}
}

// TestSessionIndexMatchesTable drives random session writes of every kind
// (starts, upserts, stops, purges, expiries, over IPv4 and IPv6 prefixes of
// several lengths, nested) and checks after each that every lookup from
// memory answers what the SQL lookup answers, and that the index holds
// exactly the table.
func TestSessionIndexMatchesTable(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	waitIndex(t, s)
	r := rand.New(rand.NewPCG(7, 7))
	prefixes := []string{
		"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3/32", "10.1.2.4/32", "10.1.2.128/25",
		"0.0.0.0/0", "192.0.2.7/32",
		"2001:db8::/32", "2001:db8:1::/48", "2001:db8:1:2::/64", "2001:db8:1:2::1/128", "2001:db8:1:2::/127",
		"::/0", "2001:db8:1:2:8000::/65",
	}
	addrs := []string{
		"10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.200", "10.1.3.1", "10.2.0.1", "11.0.0.1", "192.0.2.7",
		"::ffff:10.1.2.3", "2001:db8:1:2::1", "2001:db8:1:2::", "2001:db8:1:2:8000::1", "2001:db8:1:3::1",
		"2001:db8:2::1", "2001:db9::1",
	}
	clients := []string{"gw-a", "gw-b", ""}
	var ids []string
	for i := range 6 {
		ids = append(ids, fmt.Sprint("s", i))
	}
	for step := range 600 {
		p := prefixes[r.IntN(len(prefixes))]
		c := clients[r.IntN(len(clients))]
		id := ids[r.IntN(len(ids))]
		ns := idxSession(p, fmt.Sprintf("+3460000%04d", r.IntN(10000)), id, c, r.IntN(100))
		var what string
		var err error
		switch k := r.IntN(20); {
		case k < 8:
			what, err = "start", s.StartSession(ctx, ns)
		case k < 15:
			what, err = "upsert", s.UpsertSession(ctx, ns)
			if errors.Is(err, nv.ErrNotFound) {
				err = nil
			}
		case k < 18:
			what = "stop"
			_, err = s.StopSession(ctx, c, ns.Prefix, id)
		case k < 19:
			what = "purge"
			_, err = s.PurgeClient(ctx, c, ns.UpdatedAt)
		default:
			what = "expire"
			_, err = s.ExpireSessions(ctx, ns.UpdatedAt.Add(-50*time.Second))
		}
		if err != nil {
			t.Fatalf("step %d %s: %v", step, what, err)
		}
		for _, a := range addrs {
			nb := ns.StartedAt.Add(time.Duration(r.IntN(100)) * time.Second)
			got, gerr := s.SessionFor(ctx, netip.MustParseAddr(a), nb)
			want, werr := s.sessionForSQL(ctx, netip.MustParseAddr(a).Unmap(), nb)
			if got != want || (gerr == nil) != (werr == nil) {
				t.Fatalf("step %d (%s %v): SessionFor(%s, %v) = %+v, %v; the table says %+v, %v",
					step, what, ns.Prefix, a, nb, got, gerr, want, werr)
			}
		}
		sameAsTable(t, s, fmt.Sprintf("step %d (%s)", step, what))
	}
	if st := s.SessionIndexStats(); !st.Ready || st.Drops != 0 {
		t.Errorf("session index after own writes: %+v, want in use and never dropped", st)
	}
}

// TestSessionIndexFailedOp: a session write that fails inside its batch
// (after its statement ran) changes neither the table nor memory, and its
// batch-mates' changes are in both.
func TestSessionIndexFailedOp(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	waitIndex(t, s)
	good := idxSession("10.0.0.1/32", "+34600000001", "s1", "gw", 0)
	bad := idxSession("10.0.0.2/32", "+34600000002", "s2", "gw", 0)
	errBoom := errors.New("boom")
	failing := func(ctx context.Context) error {
		eff := sessEffect{kind: effPut, p: bad.Prefix, client: bad.Client}
		return s.writeThen(ctx, func(tx *wtx) error {
			if _, err := tx.exec(startSessionSQL, bad.Prefix.String(), bad.Prefix.Bits(), string(bad.MSISDN), bad.SessionID,
				bad.NAS, bad.IMSI, unixNano(bad.StartedAt), unixNano(bad.UpdatedAt), bad.Client); err != nil {
				return err
			}
			eff.n, eff.e = 1, entryOf(bad, unixNano(bad.StartedAt))
			return errBoom
		}, func() { s.sidx.committed(&eff) })
	}
	errs := inOneBatch(t, s,
		func(ctx context.Context) error { return s.StartSession(ctx, good) },
		failing,
	)
	outcome(t, "start beside a failing session write", errs, []error{nil, errBoom})
	if _, err := s.SessionFor(ctx, bad.Prefix.Addr(), time.Time{}); !errors.Is(err, nv.ErrNotFound) {
		t.Errorf("the failed write is visible: %v", err)
	}
	if got, err := s.SessionFor(ctx, good.Prefix.Addr(), time.Time{}); err != nil || got != good {
		t.Errorf("its batch-mate: %+v, %v", got, err)
	}
	sameAsTable(t, s, "after a failed op")
	if st := s.SessionIndexStats(); !st.Ready || st.Drops != 0 {
		t.Errorf("session index: %+v", st)
	}
}

// TestSessionIndexLostBatch: writes whose transaction is lost (a database
// that may not grow, and a full disk when the test may mount one) are in
// neither the table nor memory, and later writes are in both.
func TestSessionIndexLostBatch(t *testing.T) {
	ctx := t.Context()
	for _, disk := range []string{"max_page_count", "full disk"} {
		t.Run(disk, func(t *testing.T) {
			var s *Store
			var free func()
			if disk == "full disk" {
				dir := testdisk.Mount(t, 2<<20)
				var err error
				if s, err = Open(ctx, dir); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				waitIndex(t, s)
				if err := s.StartSession(ctx, lostSession(0)); err != nil {
					t.Fatal(err)
				}
				release := PinReader(t, dir)
				freeDisk := testdisk.Fill(t, dir)
				free = func() { freeDisk(); release() }
			} else {
				s = openTest(t)
				waitIndex(t, s)
				if err := LimitPages(ctx, s, 0); err != nil {
					t.Fatal(err)
				}
				free = func() {
					if err := LimitPages(ctx, s, 1<<30); err != nil {
						t.Fatal(err)
					}
				}
			}
			fail := -1
			for i := 1; i <= 3000 && fail < 0; i++ {
				if err := s.StartSession(ctx, lostSession(i)); err != nil {
					if !errors.Is(err, nv.ErrUnavailable) {
						t.Fatalf("write %d: %v, want nv.ErrUnavailable", i, err)
					}
					fail = i
				}
			}
			if fail < 0 {
				t.Fatal("no write failed")
			}
			if _, err := s.SessionFor(ctx, lostSession(fail).Prefix.Addr(), time.Time{}); !errors.Is(err, nv.ErrNotFound) {
				t.Errorf("the lost write is visible: %v", err)
			}
			sameAsTable(t, s, "after the lost write")
			free()
			if err := s.Ping(ctx); err != nil {
				t.Fatalf("Ping once space is back: %v", err)
			}
			if err := s.StartSession(ctx, lostSession(fail)); err != nil {
				t.Fatalf("the write again: %v", err)
			}
			if got, err := s.SessionFor(ctx, lostSession(fail).Prefix.Addr(), time.Time{}); err != nil || got != lostSession(fail) {
				t.Errorf("the write again: %+v, %v", got, err)
			}
			sameAsTable(t, s, "after the write again")
			if st := s.SessionIndexStats(); !st.Ready || st.Drops != 0 {
				t.Errorf("session index: %+v, want in use, never dropped", st)
			}
		})
	}
}

func lostSession(i int) nv.NetworkSession {
	at := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	return nv.NetworkSession{
		Prefix:    netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 32),
		MSISDN:    nv.PhoneNumber(fmt.Sprintf("+34600%06d", i)),
		SessionID: fmt.Sprintf("s-%d-with-some-length-to-fill-pages-%064d", i, i),
		NAS:       "gw", Client: "gw", StartedAt: at, UpdatedAt: at,
	}
}

// openRaw opens the database file in dir as sqlite3 would: a connection of
// its own, raw SQL, waiting on locks; closed when the test ends.
func openRaw(t *testing.T, dir string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}

// insertRaw inserts a session of client and NAS "gw" in raw SQL, around
// the Store.
func insertRaw(t *testing.T, raw *sql.DB, prefix string, bits int, msisdn, id string) {
	t.Helper()
	if _, err := raw.ExecContext(t.Context(), `INSERT INTO network_sessions (prefix, bits, msisdn, session_id, nas, imsi, started_at, updated_at, client)
VALUES (?, ?, ?, ?, 'gw', '', 1, 1, 'gw')`, prefix, bits, msisdn, id); err != nil {
		t.Fatal(err)
	}
}

// eventually waits until cond holds (the index saw another process's
// change), failing after indexWait.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(indexWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not seen after %s", what, indexWait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSessionIndexOtherProcess: changes another process makes to the same
// file (a second Store, as the CLI or a second server would; raw SQL on a
// connection of its own, as sqlite3 would) become visible to this
// process's lookups, and the index is rebuilt to match the table.
func TestSessionIndexOtherProcess(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := openDir(t, dir)
	waitIndex(t, s)
	a := idxSession("10.0.0.1/32", "+34600000001", "s1", "gw", 10)
	if err := s.StartSession(ctx, a); err != nil {
		t.Fatal(err)
	}
	other := openDir(t, dir)
	lookup := func(addr string) (nv.NetworkSession, error) {
		return s.SessionFor(ctx, netip.MustParseAddr(addr), time.Time{})
	}

	// The other process gives the address to another subscriber.
	b := idxSession("10.0.0.1/32", "+34600000002", "s2", "gw", 20)
	if err := other.StartSession(ctx, b); err != nil {
		t.Fatal(err)
	}
	eventually(t, "another process's Start", func() bool {
		got, err := lookup("10.0.0.1")
		if err == nil && got != a && got != b {
			t.Fatalf("lookup after another process's Start: %+v", got)
		}
		return err == nil && got == b
	})
	// Once seen, never the old holder again, while memory is rebuilt.
	for deadline := time.Now().Add(indexWait); !s.SessionIndexStats().Ready && time.Now().Before(deadline); {
		if got, err := lookup("10.0.0.1"); err != nil || got != b {
			t.Fatalf("lookup while the index is rebuilt: %+v, %v", got, err)
		}
		time.Sleep(time.Millisecond)
	}
	waitIndex(t, s)
	sameAsTable(t, s, "after the rebuild")

	// Its Stop, its expiry, its purge.
	if ok, err := other.StopSession(ctx, b.Client, b.Prefix, b.SessionID); err != nil || !ok {
		t.Fatalf("other StopSession: %v, %v", ok, err)
	}
	eventually(t, "another process's Stop", func() bool {
		_, err := lookup("10.0.0.1")
		return errors.Is(err, nv.ErrNotFound)
	})
	c := idxSession("10.0.0.3/32", "+34600000003", "s3", "gw", 30)
	d := idxSession("2001:db8::/64", "+34600000004", "s4", "gw-2", 30)
	for _, ns := range []nv.NetworkSession{c, d} {
		if err := s.StartSession(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := other.ExpireSessions(ctx, c.UpdatedAt.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "another process's expiry", func() bool {
		_, err1 := lookup("10.0.0.3")
		_, err2 := lookup("2001:db8::1")
		return errors.Is(err1, nv.ErrNotFound) && errors.Is(err2, nv.ErrNotFound)
	})
	if err := s.StartSession(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := other.PurgeClient(ctx, d.Client, d.UpdatedAt.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "another process's purge", func() bool {
		_, err := lookup("2001:db8::1")
		return errors.Is(err, nv.ErrNotFound)
	})

	// Raw SQL on a connection of its own, as sqlite3 would: an update in
	// place, then a new row at a length no one used before.
	if err := s.StartSession(ctx, a); err != nil {
		t.Fatal(err)
	}
	waitIndex(t, s)
	raw := openRaw(t, dir)
	if _, err := raw.ExecContext(ctx, "UPDATE network_sessions SET msisdn = '+34600000099' WHERE prefix = '10.0.0.1/32'"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "an UPDATE in raw SQL", func() bool {
		got, err := lookup("10.0.0.1")
		return err == nil && got.MSISDN == "+34600000099"
	})
	insertRaw(t, raw, "10.0.0.0/30", 30, "+34600000098", "s98")
	eventually(t, "an INSERT in raw SQL", func() bool {
		got, err := lookup("10.0.0.2")
		return err == nil && got.MSISDN == "+34600000098"
	})
	waitIndex(t, s)
	sameAsTable(t, s, "after raw SQL")
	if got, err := lookup("10.0.0.1"); err != nil || got.MSISDN != "+34600000099" {
		t.Errorf("the /32 inside the new /30: %+v, %v", got, err)
	}
	if st := s.SessionIndexStats(); st.Drops == 0 || st.LastDrop == "" {
		t.Errorf("session index stats: %+v, want drops for the other process's changes", st)
	}
}

// TestSessionIndexOtherProcessNewLength: another process gives an address
// inside a shorter prefix to another subscriber, with a prefix length no
// session used before. Once this process has noticed (the index dropped),
// every lookup answers the new, longer prefix: the table lookup that
// serves meanwhile probes the new length at once, not a second later.
func TestSessionIndexOtherProcessNewLength(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := openDir(t, dir)
	wide := idxSession("10.9.0.0/16", "+34600000001", "s1", "gw", 10)
	if err := s.StartSession(ctx, wide); err != nil {
		t.Fatal(err)
	}
	waitIndex(t, s)
	drops := s.SessionIndexStats().Drops
	raw := openRaw(t, dir)
	insertRaw(t, raw, "10.9.0.4/30", 30, "+34600000002", "s2")
	a := netip.MustParseAddr("10.9.0.5")
	eventually(t, "the index dropped after another process's write", func() bool {
		return s.SessionIndexStats().Drops > drops
	})
	for !s.SessionIndexStats().Ready {
		if got, err := s.SessionFor(ctx, a, time.Time{}); err != nil || got.MSISDN != "+34600000002" {
			t.Fatalf("lookup once the other process's write was noticed: %+v, %v; want the /30's +34600000002", got, err)
		}
		time.Sleep(time.Millisecond)
	}
	if got, err := s.SessionFor(ctx, a, time.Time{}); err != nil || got.MSISDN != "+34600000002" {
		t.Fatalf("lookup after the rebuild: %+v, %v", got, err)
	}
}

// TestSessionLengthsStaleAfterFailedRead: when a read of the prefix lengths
// fails (the one that would have brought a length another process used
// first), the table lookup probes every length, so a longer prefix written
// inside a shorter one is answered with its own subscriber, not the
// shorter prefix's.
func TestSessionLengthsStaleAfterFailedRead(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := openDir(t, dir)
	if err := s.StartSession(ctx, idxSession("10.8.0.0/16", "+34600000001", "s1", "gw", 10)); err != nil {
		t.Fatal(err)
	}
	raw := openRaw(t, dir)
	failed, cancel := context.WithCancel(ctx)
	cancel()
	// One new length at a time, each looked up right after its write and
	// a failed read (the server's own reads every sessionPoll may or may
	// not have seen it yet).
	for bits := 17; bits <= 32; bits++ {
		p := netip.PrefixFrom(netip.MustParseAddr("10.8.255.255"), bits).Masked()
		msisdn := fmt.Sprintf("+346000001%02d", bits)
		insertRaw(t, raw, p.String(), bits, msisdn, fmt.Sprint("s", bits))
		if err := s.loadLengths(failed); err == nil {
			t.Fatal("a read with a cancelled context succeeded")
		}
		got, err := s.sessionForSQL(ctx, netip.MustParseAddr("10.8.255.255"), time.Time{})
		if err != nil || string(got.MSISDN) != msisdn {
			t.Fatalf("/%d after a failed read of the lengths: %+v, %v; want %s", bits, got, err, msisdn)
		}
	}
	if err := s.loadLengths(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.lengths.of(netip.MustParseAddr("10.8.0.1")); len(got) != 17 {
		t.Errorf("lengths after a read that succeeded: %v; want 32 down to 16", got)
	}
}

// TestSessionIndexReload: after a restart the index holds what the table
// holds.
func TestSessionIndexReload(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []nv.NetworkSession{
		idxSession("10.0.0.1/32", "+34600000001", "s1", "gw", 10),
		idxSession("10.0.1.0/24", "+34600000002", "s2", "gw", 10),
		idxSession("2001:db8:1::/48", "+34600000003", "s3", "", 10),
		idxSession("2001:db8:1:2::/64", "+34600000004", "s4", "gw", 10),
	}
	for _, ns := range want {
		if err := s.StartSession(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waitIndex(t, s)
	sameAsTable(t, s, "after reopening")
	for _, ns := range want {
		if got, err := s.SessionFor(ctx, ns.Prefix.Addr(), time.Time{}); err != nil || got != ns {
			t.Errorf("SessionFor(%v) after reopening: %+v, %v", ns.Prefix, got, err)
		}
	}
	if st := s.SessionIndexStats(); st.Sessions != len(want) {
		t.Errorf("index after reopening: %+v, want %d sessions", st, len(want))
	}
}

// TestSessionIndexConcurrent: lookups from many goroutines while sessions
// are written, each answer one the table held (the race detector checks
// the locking).
func TestSessionIndexConcurrent(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	waitIndex(t, s)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) * 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, err := s.SessionFor(ctx, netip.MustParseAddr("10.0.0.7"), time.Time{})
				if err == nil && got.MSISDN != "+34600000007" {
					t.Errorf("lookup: %+v", got)
					return
				}
			}
		})
	}
	for i := range 300 {
		ns := idxSession(fmt.Sprintf("10.0.%d.%d/32", i/200, i%200), fmt.Sprintf("+34600%06d", i%200), "s", "gw", i)
		if err := s.StartSession(ctx, ns); err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 {
			if _, err := s.StopSession(ctx, "gw", ns.Prefix, "s"); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	sameAsTable(t, s, "after concurrent writes")
}

// TestSessionForAllocs: a lookup served from memory allocates nothing.
func TestSessionForAllocs(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts differ under -cover and -race")
	}
	ctx := t.Context()
	s := openTest(t)
	waitIndex(t, s)
	ns := idxSession("10.0.0.1/32", "+34600000001", "s1", "gw", 10)
	if err := s.StartSession(ctx, ns); err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("10.0.0.1")
	if n := testing.AllocsPerRun(100, func() {
		if _, err := s.SessionFor(ctx, a, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("SessionFor from memory: %v allocations, want 0", n)
	}
}

// TestSessionWritesRecordEffects: every statement that changes
// network_sessions is in network.go, where each records its effect for the
// session index. A write elsewhere would change the table behind the
// index's back (this process's own writes do not move data_version): the
// index would answer for a session that is gone, the wrong subscriber.
func TestSessionWritesRecordEffects(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	write := regexp.MustCompile(`(?i)(INSERT\s+(OR\s+\w+\s+)?INTO|REPLACE\s+INTO|UPDATE|DELETE\s+FROM)\s+network_sessions\b`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "network.go" || f == "schema.go" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if loc := write.FindIndex(b); loc != nil {
			t.Errorf("%s writes network_sessions (%q) outside network.go: record its effect for the session index (writeThen, sessEffect)", f, b[loc[0]:loc[1]])
		}
	}
	b, err := os.ReadFile("network.go")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(write.FindAll(b, -1)); got != 5 {
		t.Errorf("network.go has %d statements writing network_sessions, want 5 (start, upsert, stop, purge, expire): a new one must record its effect for the session index", got)
	}
}
