package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// readStmts caches the read pool's prepared statements by query text.
// Preparing a statement is a large part of a small read's cost in
// modernc.org/sqlite (a profile of `bench flow` showed 13% of the server's
// CPU in prepareV2); a *sql.Stmt on the pool is prepared once per
// connection and reused after.
type readStmts struct {
	m sync.Map // query -> *sql.Stmt
}

func (c *readStmts) get(ctx context.Context, db *sql.DB, q string) (*sql.Stmt, error) {
	if st, ok := c.m.Load(q); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if prev, loaded := c.m.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

func (c *readStmts) close() {
	c.m.Range(func(_, v any) bool {
		v.(*sql.Stmt).Close()
		return true
	})
}

// queryRow runs a read returning at most one row on the read pool.
func (s *Store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := s.rs.get(ctx, s.r, q)
	if err != nil {
		return s.r.QueryRowContext(ctx, q, args...) // carries the error
	}
	return st.QueryRowContext(ctx, args...)
}

// query runs a read on the read pool.
func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := s.rs.get(ctx, s.r, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}
