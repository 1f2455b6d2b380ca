// Package postgres is the PostgreSQL store of numbergate, for several nodes
// serving one operator together: it implements nv.Store on
// github.com/jackc/pgx/v5 (a connection pool, no database/sql).
//
// Every single-use value (authorization code, access token, client-assertion
// jti) is consumed by one SQL statement that only one caller, on any node,
// can win. An access token of a grant is inserted only while the grant row
// is locked FOR SHARE and not revoked, so RevokeGrant (UPDATE, then DELETE
// of its tokens) can never leave a live token behind.
//
// The schema is versioned and embedded (migrations/NNNN_name.sql); Open
// applies what the database has not seen under a PostgreSQL advisory lock,
// so nodes starting together are safe. Migrations only add: a node of the
// previous release keeps working on the next schema during a rolling
// upgrade.
//
// Network-session writes (RADIUS) are committed in batches by a few
// writers (batch.go); identity lookup probes the primary key once per
// prefix length in use. Clients are served from memory, revalidated by a
// change counter every node polls (client.go, Store.Client).
//
// Errors that mean "the database cannot serve now" (unreachable, timed out,
// in recovery, read-only after a failover, too many connections) wrap
// nv.ErrUnavailable; the edges turn it into 503 / temporarily_unavailable.
// A zero time.Time is stored as NULL.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numbergate/numbergate/internal/clientcache"
	"github.com/numbergate/numbergate/internal/nv"
)

// Defaults of Options.
const (
	DefaultMaxConns           = 16
	DefaultStatementTimeout   = 5 * time.Second
	DefaultConnMaxLifetime    = 30 * time.Minute
	DefaultConnectTimeout     = 5 * time.Second
	DefaultPortBlockRetention = 7 * 24 * time.Hour
	// DefaultCollectBatch is how many expired rows one DELETE of Collect or
	// ExpireSessions removes: small enough that no lock is held for long.
	DefaultCollectBatch = 1000
)

// Options configure Open. Zero values take the defaults.
type Options struct {
	// DSN is a PostgreSQL connection string (URL or key=value form).
	DSN string
	// MaxConns bounds the pool.
	MaxConns int32
	// StatementTimeout is set as the server's statement_timeout and, plus
	// a second, bounds every store call on the client side too (a database
	// that stopped answering gives nv.ErrUnavailable, not a hang).
	StatementTimeout time.Duration
	// ConnMaxLifetime recycles connections (so a failover's new primary
	// behind the same name is picked up by every connection in time).
	ConnMaxLifetime time.Duration
	// PortBlockRetention is how long Collect keeps released CGNAT blocks.
	PortBlockRetention time.Duration
	// CollectBatch is the size of one expiry DELETE.
	CollectBatch int
}

var _ nv.Store = (*Store)(nil)

// Store is an nv.Store on a PostgreSQL database.
type Store struct {
	pool      *pgxpool.Pool
	opTimeout time.Duration
	retention time.Duration
	batch     int
	sessions  *writer // network-session writes, committed in batches
	clients   clientcache.Cache

	stop     chan struct{} // closed by Close: stops the client poll
	stopOnce sync.Once
	bg       sync.WaitGroup
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one embedded schema step.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %q is not named NNNN_name.sql", e.Name())
		}
		body, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migrations are not numbered 1..%d without gaps (found %d)", len(ms), m.version)
		}
	}
	return ms, nil
}

// SchemaVersion is the schema version this binary brings.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// Open connects to the database, brings its schema up to date (Migrate)
// and returns the store.
func Open(ctx context.Context, o Options) (*Store, error) {
	s, err := connect(ctx, o)
	if err != nil {
		return nil, err
	}
	if _, err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// connect builds the pool without touching the schema.
func connect(ctx context.Context, o Options) (*Store, error) {
	if o.DSN == "" {
		return nil, errors.New("postgres: open: empty dsn")
	}
	cfg, err := pgxpool.ParseConfig(o.DSN)
	if err != nil {
		// The parse error may quote the DSN, password included: say less.
		return nil, errors.New("postgres: open: the dsn is not a valid PostgreSQL connection string")
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = DefaultStatementTimeout
	}
	if o.ConnMaxLifetime <= 0 {
		o.ConnMaxLifetime = DefaultConnMaxLifetime
	}
	if o.PortBlockRetention <= 0 {
		o.PortBlockRetention = DefaultPortBlockRetention
	}
	if o.CollectBatch <= 0 {
		o.CollectBatch = DefaultCollectBatch
	}
	cfg.MaxConns = o.MaxConns
	cfg.MaxConnLifetime = o.ConnMaxLifetime
	cfg.MaxConnLifetimeJitter = o.ConnMaxLifetime / 10
	cfg.MaxConnIdleTime = 5 * time.Minute
	cfg.HealthCheckPeriod = 15 * time.Second
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > DefaultConnectTimeout {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(o.StatementTimeout.Milliseconds(), 10)
	cfg.ConnConfig.RuntimeParams["application_name"] = "numbergate"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", unavailable(err))
	}
	s := &Store{
		pool:      pool,
		opTimeout: o.StatementTimeout + time.Second,
		retention: o.PortBlockRetention,
		batch:     o.CollectBatch,
	}
	s.sessions = newWriter(s)
	s.stop = make(chan struct{})
	s.bg.Go(func() { s.clients.Poll(s.stop, s.clientsGen) })
	return s, nil
}

// Migrate opens the database without the schema check and applies the
// migrations it has not seen; it returns the versions it applied.
func Migrate(ctx context.Context, o Options) ([]int, error) {
	s, err := connect(ctx, o)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Migrate(ctx)
}

// migrateLock is the advisory lock key (within the current schema) that
// serializes migrations of nodes starting together.
const migrateLock = "numbergate.migrate"

// Migrate applies the migrations the database has not seen, each in its own
// transaction, while holding a session advisory lock keyed by the schema;
// it returns the versions it applied (none when up to date).
func (s *Store) Migrate(ctx context.Context) ([]int, error) {
	ms, err := migrations()
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", unavailable(err))
	}
	defer conn.Release()
	var schema *string
	if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", classify(ctx, err))
	}
	if schema == nil {
		return nil, errors.New("postgres: migrate: no schema of the search_path exists; create it first")
	}
	key := migrateLock + "." + *schema
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtext($1))", key); err != nil {
		return nil, fmt.Errorf("postgres: migrate: lock: %w", classify(ctx, err))
	}
	defer func() {
		// A fresh context: the lock must go even if ctx has ended (a
		// broken connection drops it anyway).
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = conn.Exec(uctx, "SELECT pg_advisory_unlock(hashtext($1))", key)
	}()
	if _, err := conn.Exec(ctx, `
CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", classify(ctx, err))
	}
	var current int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&current); err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", classify(ctx, err))
	}
	var applied []int
	for _, m := range ms[min(current, len(ms)):] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("postgres: migrate: to version %d (%s): %w", m.version, m.name, classify(ctx, err))
		}
		applied = append(applied, m.version)
	}
	return applied, nil
}

// Ping does a real round-trip: it reads the schema version and checks the
// database accepts writes (a primary, not a replica left after failover).
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	var (
		version  int
		readOnly string
	)
	err := s.pool.QueryRow(ctx,
		"SELECT coalesce(max(version), 0), current_setting('transaction_read_only') FROM schema_migrations").Scan(&version, &readOnly)
	if err != nil {
		return fmt.Errorf("postgres: ping: %w", classify(ctx, err))
	}
	if readOnly == "on" {
		return fmt.Errorf("postgres: ping: the database is read-only (a standby?): %w", nv.ErrUnavailable)
	}
	if want := SchemaVersion(); version < want {
		return fmt.Errorf("postgres: ping: schema version %d, want %d", version, want)
	}
	return nil
}

// Close stops the client poll and the session writers and closes the
// pool. Closing twice is harmless.
func (s *Store) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	s.bg.Wait()
	s.sessions.close()
	s.pool.Close()
	return nil
}

// errOpTimeout is the cause of a store call's own deadline.
var errOpTimeout = errors.New("the database did not answer in time")

// op bounds one store call on the client side.
func (s *Store) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, s.opTimeout, errOpTimeout)
}

// exec runs one statement and returns how many rows it changed.
func (s *Store) exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := s.pool.Exec(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// fail wraps err for the caller: pgx.ErrNoRows becomes nv.ErrNotFound, an
// outage nv.ErrUnavailable.
func fail(ctx context.Context, what string, err error) error {
	return fmt.Errorf("postgres: %s: %w", what, classify(ctx, err))
}

// classify maps a pgx error onto the nv sentinels.
func classify(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return nv.ErrNotFound
	case errors.Is(err, nv.ErrNotFound), errors.Is(err, nv.ErrAlreadyExists),
		errors.Is(err, nv.ErrConsumed), errors.Is(err, nv.ErrExpired), errors.Is(err, nv.ErrUnavailable):
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if unavailableCode(pe.Code) {
			return fmt.Errorf("%w: %w", nv.ErrUnavailable, err)
		}
		return err
	}
	// Our own deadline (op) ran out: the database did not answer in time.
	if errors.Is(context.Cause(ctx), errOpTimeout) {
		return fmt.Errorf("%w: %w: %w", nv.ErrUnavailable, errOpTimeout, err)
	}
	if ctx.Err() != nil {
		return err // the caller gave up; not the database's fault
	}
	return unavailable(err)
}

// unavailable wraps connection-level failures with nv.ErrUnavailable and
// returns anything else unchanged.
func unavailable(err error) error {
	var (
		ce *pgconn.ConnectError
		ne net.Error
	)
	switch {
	case errors.As(err, &ce), errors.As(err, &ne), pgconn.Timeout(err), pgconn.SafeToRetry(err),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		strings.Contains(err.Error(), "conn closed"):
		return fmt.Errorf("%w: %w", nv.ErrUnavailable, err)
	}
	return err
}

// unavailableCode reports whether a server error means "cannot serve now"
// rather than "this request is wrong".
func unavailableCode(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"): // connection exception
		return true
	case strings.HasPrefix(code, "53"): // insufficient resources (disk full, too many connections)
		return true
	case strings.HasPrefix(code, "58"): // system error (I/O)
		return true
	case code == "57P01", code == "57P02", code == "57P03": // shutdown, crash, cannot connect now
		return true
	case code == "57014": // statement_timeout
		return true
	case code == "25006": // read-only transaction: a standby after failover
		return true
	case code == "40001", code == "40P01": // serialization failure, deadlock: retry later
		return true
	}
	return false
}

// ts stores t; the zero time is NULL.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// fromTS reverses ts, in UTC.
func fromTS(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
