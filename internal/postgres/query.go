package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// queryAll runs a query and scans every row with scan; what names the
// operation in the error.
func queryAll[T any](ctx context.Context, s *Store, what string, scan pgx.RowToFunc[T], sql string, args ...any) ([]T, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fail(ctx, what, err)
	}
	out, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return nil, fail(ctx, what, err)
	}
	return out, nil
}

// execOne runs a statement that must change a row; when it changes none
// the error wraps none (nv.ErrNotFound, nv.ErrAlreadyExists, ...).
func (s *Store) execOne(ctx context.Context, what string, none error, sql string, args ...any) error {
	n, err := s.exec(ctx, sql, args...)
	if err != nil {
		return fail(ctx, what, err)
	}
	if n == 0 {
		return fmt.Errorf("postgres: %s: %w", what, none)
	}
	return nil
}
