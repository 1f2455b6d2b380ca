package sqlite

import (
	"context"
	"fmt"
)

// LimitPages sets max_page_count on the write connection: n pages, or the
// current size when n is 0, so the database cannot grow.
func LimitPages(ctx context.Context, s *Store, n int) error {
	if n == 0 {
		if err := s.w.QueryRowContext(ctx, "PRAGMA page_count").Scan(&n); err != nil {
			return err
		}
	}
	_, err := s.w.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", n))
	return err
}
