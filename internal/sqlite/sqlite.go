// Package sqlite is the embedded store of numbergate: it keeps clients,
// signing keys, consumed jtis, authorization sessions and grants, access
// token hashes, the static network map and network sessions (RADIUS
// accounting, CGNAT port blocks) in one SQLite database file, and implements
// nv.Store on it with modernc.org/sqlite (pure Go, no cgo).
//
// The database runs in WAL mode with synchronous=FULL: a write reported as
// done (a RADIUS Accounting-Response is sent after it) survives a power
// loss, not only a crash of the process. Writes go through one connection
// owned by one writer goroutine, which commits every write waiting in one
// transaction and one sync (group commit, see writer.go), so they queue in Go
// rather than spin on SQLITE_BUSY; reads use a separate pool of read-only
// connections and never wait for writers. Every single-use value (code,
// token, jti) is consumed by one SQL statement.
//
// Times are stored as Unix nanoseconds; the zero time.Time is stored as 0.
// A zero ExpiresAt on an auth session, a grant or a jti means it never
// expires; an access token with a zero ExpiresAt is already expired.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/numbergate/numbergate/internal/clientcache"
	"github.com/numbergate/numbergate/internal/nv"
)

// FileName is the name of the database file inside the data directory.
const FileName = "numbergate.db"

// DefaultPortBlockRetention is how long Collect keeps a released CGNAT port
// block, so that a request logged a while ago can still be traced back.
const DefaultPortBlockRetention = 7 * 24 * time.Hour

// busyTimeout is how long a connection waits for a lock held by another
// process (an admin command run next to the server) before failing.
const busyTimeout = 5 * time.Second

var _ nv.Store = (*Store)(nil)

// Store is an nv.Store on one SQLite database file.
type Store struct {
	// PortBlockRetention is how long Collect keeps released CGNAT port
	// blocks after their end. Open sets it to DefaultPortBlockRetention.
	PortBlockRetention time.Duration

	w  *sql.DB // the one write connection, owned by wr once open
	wr *writer // the group-commit writer
	r  *sql.DB // read-only connections
	rs readStmts

	clients  clientcache.Cache
	lengths  sessionLengths
	sidx     sessionIndex       // network sessions in memory (sessionindex.go)
	tokc     tokenClients       // the clients of tokens stored here (tokenclients.go)
	grants   grantsByCode       // grants created here, not yet redeemed (grantcache.go)
	ix       *sql.DB            // the session index's own read-only connection
	stop     chan struct{}      // closed by Close: stops refreshLengths and the client poll
	stopIdx  context.CancelFunc // stops maintainSessionIndex
	bg       sync.WaitGroup
	stopOnce sync.Once

	tightened []string
	health    *health // set when SQLite says the store cannot serve (unavailable.go)
}

// Tightened lists the files whose permissions Open restricted to their
// owner (the data directory 0700, the database files 0600), one line each
// with the old and new mode; callers log them as warnings.
func (s *Store) Tightened() []string { return s.tightened }

// Open opens or creates the database dir/numbergate.db, creating dir (0700)
// if needed, and brings its schema up to date. An existing dir or database
// file open to group or others is restricted to its owner (0700, 0600; see
// Tightened); if that fails, Open refuses with the command that fixes it.
func Open(ctx context.Context, dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("sqlite: open: empty data directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	path, err := filepath.Abs(filepath.Join(dir, FileName))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	// Create the file ourselves so that it (and the -wal and -shm files,
	// which SQLite gives the same mode) is readable by its owner only.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	f.Close()
	// An existing directory or database keeps the mode it had: restrict it
	// to the owner (issue 6 item 14), or refuse to open when that fails.
	var tightened []string
	for _, p := range []string{dir, path, path + "-wal", path + "-shm"} {
		line, err := tighten(p)
		if err != nil {
			return nil, fmt.Errorf("sqlite: open: %w", err)
		}
		if line != "" {
			tightened = append(tightened, line)
		}
	}

	h := &health{}
	w := openDB(dsn(path, url.Values{
		"_journal_mode": {"WAL"},
		"_synchronous":  {"FULL"},
		"_foreign_keys": {"1"},
		"_txlock":       {"immediate"},
	}), h)
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)

	s := &Store{PortBlockRetention: DefaultPortBlockRetention, w: w, tightened: tightened, health: h,
		tokc: newTokenClients(), grants: newGrantsByCode()}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	conn, err := w.Conn(ctx)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	s.wr = newWriter(conn)

	// The read pool is opened after the writer has switched the file to
	// WAL mode, which is persistent.
	r := openDB(dsn(path, url.Values{
		"_foreign_keys": {"1"},
		"_query_only":   {"1"},
	}), h)
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s.r = r
	s.stop = make(chan struct{})
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.loadLengths(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open: session lengths: %w", err)
	}
	s.bg.Go(func() { s.refreshLengths(s.stop) })
	s.bg.Go(func() { s.clients.Poll(s.stop, s.clientsGen) })
	// The session index has its own connection (a long snapshot read while
	// it builds), and is built in the background: until it is, lookups
	// read SQLite.
	s.ix = openDB(dsn(path, url.Values{
		"_foreign_keys": {"1"},
		"_query_only":   {"1"},
	}), h)
	s.ix.SetMaxOpenConns(1)
	s.ix.SetMaxIdleConns(1)
	s.sidx.kick = make(chan struct{}, 1)
	ictx, cancel := context.WithCancel(context.Background())
	s.stopIdx = cancel
	s.bg.Go(func() { s.maintainSessionIndex(ictx) })
	return s, nil
}

func dsn(path string, q url.Values) string {
	q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	return u.String()
}

// Ping reads the schema version through the read pool. While writes fail
// as nv.ErrUnavailable it first probes with a real write and reports the
// store unavailable until one succeeds.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.probe(ctx); err != nil {
		return err
	}
	var v int
	if err := s.r.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	if v != len(migrations) {
		return fmt.Errorf("sqlite: ping: schema version %d, want %d", v, len(migrations))
	}
	return nil
}

// Close lets the writer commit the writes already queued, refuses new ones,
// and closes both pools.
func (s *Store) Close() error {
	var errs []error
	if s.stop != nil {
		s.stopOnce.Do(func() {
			close(s.stop)
			if s.stopIdx != nil {
				s.stopIdx()
			}
		})
		s.bg.Wait()
	}
	s.wr.close()
	s.rs.close()
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.ix != nil {
		errs = append(errs, s.ix.Close())
	}
	errs = append(errs, s.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// Collect deletes expired jtis, auth sessions, grants and access tokens, and
// CGNAT port blocks released more than PortBlockRetention before now.
// Network sessions are left to ExpireSessions.
func (s *Store) Collect(ctx context.Context, now time.Time) (int, error) {
	n := unixNano(now)
	released := unixNano(now.Add(-s.PortBlockRetention))
	var total int64
	err := s.write(ctx, func(tx *wtx) error {
		total = 0
		for _, q := range []struct {
			stmt string
			arg  any
		}{
			{"DELETE FROM jtis WHERE expires_at <> 0 AND expires_at <= ?", n},
			{"DELETE FROM auth_sessions WHERE expires_at <> 0 AND expires_at <= ?", n},
			{"DELETE FROM grants WHERE expires_at <> 0 AND expires_at <= ?", n},
			{"DELETE FROM tokens WHERE expires_at <= ?", n},
			{"DELETE FROM port_blocks WHERE end_at <> 0 AND end_at < ?", released},
			{"DELETE FROM api_usage_daily WHERE day < ?", usageDay(now.AddDate(0, 0, -1))},
		} {
			c, err := tx.exec(q.stmt, q.arg)
			if err != nil {
				return err
			}
			total += c
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: collect: %w", err)
	}
	return int(total), nil
}

// tx runs fn in a write transaction (BEGIN IMMEDIATE) and commits it if fn
// returns nil. Only migrate uses it, before the writer owns the connection.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// exec runs one write statement through the writer and returns how many
// rows it changed, once that is durable.
func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *wtx) (err error) {
		n, err = tx.exec(query, args...)
		return err
	})
	return n, err
}

// unixNano stores t; the zero time is 0.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromUnixNano reverses unixNano, in UTC.
func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// notFound turns sql.ErrNoRows into nv.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return nv.ErrNotFound
	}
	return err
}
