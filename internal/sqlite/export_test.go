package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"
)

// PinReader holds a read transaction open on the database file in dir, as
// a long reader would: the write-ahead log cannot be reset while it lasts,
// so every commit has to grow it and a full disk fails every write.
func PinReader(t *testing.T, dir string) (release func()) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(context.Background(), &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow("SELECT count(*) FROM network_sessions").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return func() {
		tx.Rollback()
		db.Close()
	}
}

// LimitPages sets max_page_count on the write connection: n pages, or the
// current size when n is 0, so the database cannot grow. It runs as a
// write, since the writer owns the write connection.
func LimitPages(ctx context.Context, s *Store, n int) error {
	return s.write(ctx, func(tx *wtx) error {
		pages := n // n stays as given: the op may run twice (writer.go)
		if pages == 0 {
			if err := tx.queryRow("PRAGMA page_count").Scan(&pages); err != nil {
				return err
			}
		}
		var got int
		return tx.queryRow(fmt.Sprintf("PRAGMA max_page_count = %d", pages)).Scan(&got)
	})
}

// FillSessions inserts sessions 0..n-1 (addr(i), "s<i>", updated at) in one
// transaction, for benchmarks that need a large table quickly. It writes
// around the session index, so it drops it (a rebuild reads the rows).
func FillSessions(ctx context.Context, s *Store, n int, at time.Time, addr func(int) netip.Addr) error {
	return s.writeThen(ctx, func(tx *wtx) error {
		for i := range n {
			p := netip.PrefixFrom(addr(i), addr(i).BitLen())
			_, err := tx.exec(`INSERT INTO network_sessions (prefix, bits, msisdn, session_id, nas, imsi, started_at, updated_at, client)
VALUES (?, ?, ?, ?, 'gw', '', ?, ?, 'gw')`, p.String(), p.Bits(), fmt.Sprintf("+3469%08d", i), fmt.Sprint("s", i), unixNano(at), unixNano(at))
			if err != nil {
				return err
			}
		}
		return nil
	}, func() { s.sidx.off("sessions inserted around the index") })
}

// WaitSessionIndex waits until lookups are served by the in-memory session
// index, or ctx ends.
func WaitSessionIndex(ctx context.Context, s *Store) error {
	for !s.SessionIndexStats().Ready {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}
