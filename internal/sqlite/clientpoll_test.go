package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

// holdReads takes every read connection of s and keeps it until release
// is called, so that every read of s waits (or times out).
func holdReads(t *testing.T, s *Store) (release func()) {
	t.Helper()
	var held []*sql.Conn
	for range max(4, runtime.GOMAXPROCS(0)) {
		conn, err := s.r.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, conn)
	}
	return func() {
		for _, conn := range held {
			conn.Close()
		}
	}
}

// TestClientPollFailsClosed: while the background poll cannot read the
// clients change counter (here: every read connection is busy), the cache
// is not trusted: a client removed by another process stops being served
// from memory (a lookup reads the database, or fails), instead of
// authenticating for as long as the poll keeps failing.
func TestClientPollFailsClosed(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	server := openDir(t, dir)
	cli := openDir(t, dir)
	c := nv.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}, JWKS: []byte(`{"keys":[]}`),
		Scopes: []string{nv.ScopeOpenID}, CreatedAt: time.Unix(1_700_000_000, 0).UTC()}
	if err := cli.PutClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Client(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	release := holdReads(t, server)
	defer release()
	if err := cli.DeleteClient(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		lctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		_, err := server.Client(lctx, "app")
		cancel()
		if err != nil {
			if !errors.Is(err, nv.ErrNotFound) && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("lookup: %v", err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a client removed by another process is still served from the cache while the poll cannot read")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestForeignWriteCheckDoesNotHoldTheWriter: the session index's check for
// another process's write must not keep the writer waiting on a read of the
// read pool. With every read connection busy (long reads), after another
// process wrote, this Store's writes still complete.
func TestForeignWriteCheckDoesNotHoldTheWriter(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	server := openDir(t, dir)
	waitIndex(t, server)
	other := openDir(t, dir)
	release := holdReads(t, server)
	defer release()
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	if err := other.ConsumeJTI(ctx, "cli", "x", now.Add(time.Hour), now); err != nil {
		t.Fatal(err)
	}
	// Let the index's check (every sessionPoll) see the other process's
	// write while the reads are held.
	time.Sleep(10 * sessionPoll)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := server.ConsumeJTI(wctx, "app", "y", now.Add(time.Hour), now); err != nil {
		t.Fatalf("a write while the read pool is busy, after another process wrote: %v", err)
	}
}
