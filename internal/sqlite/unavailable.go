package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/numbergate/numbergate/internal/nv"
)

// This file maps the SQLite errors that mean "the store cannot serve right
// now" to nv.ErrUnavailable, once, under every query: the database/sql
// connections of the store go through a thin driver wrapper (connector)
// whose every call passes its error through unavailable. The store's
// methods need not know; their errors wrap what they got, so
// errors.Is(err, nv.ErrUnavailable) holds at the edges.
//
// A write that failed this way leaves nothing behind: SQLite rolls the
// statement (or the transaction, at COMMIT) back, so nothing half-written
// is visible. While writes fail, Ping reports the store unavailable; it
// then probes with a real write (a committed, synced update of the schema
// version to its own value), so readiness comes back by itself once space
// (or the disk) does, even if no traffic arrives meanwhile.

// unavailable wraps err with nv.ErrUnavailable when SQLite reports a
// condition of the machine rather than of the request: the disk is full
// (SQLITE_FULL), an I/O error (SQLITE_IOERR_*), the file cannot be opened
// or is read-only, no memory, or a lock held past the busy timeout.
func unavailable(err error) error {
	if err == nil {
		return nil // before se, which errors.As makes escape: no allocation per statement
	}
	var se *sqlite.Error
	if !errors.As(err, &se) || errors.Is(err, nv.ErrUnavailable) {
		return err
	}
	switch se.Code() & 0xff { // primary code of an extended result code
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN,
		sqlite3.SQLITE_READONLY, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_BUSY,
		sqlite3.SQLITE_NOLFS, sqlite3.SQLITE_PROTOCOL:
		return fmt.Errorf("%w: %w", nv.ErrUnavailable, err)
	}
	return err
}

// health remembers that the store failed as unavailable until a probe
// write succeeds.
type health struct{ failing atomic.Bool }

func (h *health) check(err error) error {
	err = unavailable(err)
	if errors.Is(err, nv.ErrUnavailable) {
		h.failing.Store(true)
	}
	return err
}

// openDB opens a database/sql pool on dsn whose errors go through h.
func openDB(dsn string, h *health) *sql.DB {
	return sql.OpenDB(connector{dsn: dsn, drv: &sqlite.Driver{}, h: h})
}

type connector struct {
	dsn string
	drv *sqlite.Driver
	h   *health
}

func (c connector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, c.h.check(err)
	}
	return &wrapConn{c: conn, h: c.h}, nil
}

func (c connector) Driver() driver.Driver { return c.drv }

// wrapConn forwards to modernc's connection, which implements every
// interface below.
type wrapConn struct {
	c driver.Conn
	h *health
}

var (
	_ driver.ConnBeginTx        = (*wrapConn)(nil)
	_ driver.ConnPrepareContext = (*wrapConn)(nil)
	_ driver.ExecerContext      = (*wrapConn)(nil)
	_ driver.QueryerContext     = (*wrapConn)(nil)
	_ driver.Pinger             = (*wrapConn)(nil)
	_ driver.SessionResetter    = (*wrapConn)(nil)
	_ driver.Validator          = (*wrapConn)(nil)
)

func (c *wrapConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *wrapConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	s, err := c.c.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil, c.h.check(err)
	}
	return &wrapStmt{s: s, h: c.h}, nil
}

func (c *wrapConn) Close() error { return c.c.Close() }

func (c *wrapConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *wrapConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	t, err := c.c.(driver.ConnBeginTx).BeginTx(ctx, opts)
	if err != nil {
		return nil, c.h.check(err)
	}
	return wrapTx{t: t, h: c.h}, nil
}

func (c *wrapConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	r, err := c.c.(driver.ExecerContext).ExecContext(ctx, query, args)
	return r, c.h.check(err)
}

func (c *wrapConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	r, err := c.c.(driver.QueryerContext).QueryContext(ctx, query, args)
	if err != nil {
		return nil, c.h.check(err)
	}
	return wrapRows{r: r, h: c.h}, nil
}

func (c *wrapConn) Ping(ctx context.Context) error {
	return c.h.check(c.c.(driver.Pinger).Ping(ctx))
}

func (c *wrapConn) ResetSession(ctx context.Context) error {
	return c.c.(driver.SessionResetter).ResetSession(ctx)
}

func (c *wrapConn) IsValid() bool { return c.c.(driver.Validator).IsValid() }

type wrapStmt struct {
	s driver.Stmt
	h *health
}

func (s *wrapStmt) Close() error  { return s.s.Close() }
func (s *wrapStmt) NumInput() int { return s.s.NumInput() }

// Exec and Query are driver.Stmt's; database/sql calls the Context forms.
func (s *wrapStmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), named(args))
}

func (s *wrapStmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), named(args))
}

func named(args []driver.Value) []driver.NamedValue {
	out := make([]driver.NamedValue, len(args))
	for i, v := range args {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return out
}

func (s *wrapStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	r, err := s.s.(driver.StmtExecContext).ExecContext(ctx, args)
	return r, s.h.check(err)
}

func (s *wrapStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	r, err := s.s.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		return nil, s.h.check(err)
	}
	return wrapRows{r: r, h: s.h}, nil
}

type wrapTx struct {
	t driver.Tx
	h *health
}

func (t wrapTx) Commit() error   { return t.h.check(t.t.Commit()) }
func (t wrapTx) Rollback() error { return t.h.check(t.t.Rollback()) }

type wrapRows struct {
	r driver.Rows
	h *health
}

func (r wrapRows) Columns() []string { return r.r.Columns() }
func (r wrapRows) Close() error      { return r.h.check(r.r.Close()) }

func (r wrapRows) Next(dest []driver.Value) error {
	err := r.r.Next(dest)
	if err != nil && !errors.Is(err, io.EOF) {
		return r.h.check(err)
	}
	return err
}

// probe is Ping's write while the store is failing: the schema version
// written to its own value, committed and synced like any write. It needs
// the write-ahead log to take a frame, so it fails while the disk is full.
func (s *Store) probe(ctx context.Context) error {
	if !s.health.failing.Load() {
		return nil
	}
	if _, err := s.exec(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
		err = unavailable(err)
		if !errors.Is(err, nv.ErrUnavailable) {
			err = fmt.Errorf("%w: %w", nv.ErrUnavailable, err)
		}
		return fmt.Errorf("sqlite: writes are failing: %w", err)
	}
	s.health.failing.Store(false)
	return nil
}
