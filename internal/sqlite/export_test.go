package sqlite

import (
	"context"
	"fmt"
)

// LimitPages sets max_page_count on the write connection: n pages, or the
// current size when n is 0, so the database cannot grow. It runs as a
// write, since the writer owns the write connection.
func LimitPages(ctx context.Context, s *Store, n int) error {
	return s.write(ctx, func(tx *wtx) error {
		if n == 0 {
			if err := tx.queryRow("PRAGMA page_count").Scan(&n); err != nil {
				return err
			}
		}
		var got int
		return tx.queryRow(fmt.Sprintf("PRAGMA max_page_count = %d", n)).Scan(&got)
	})
}
