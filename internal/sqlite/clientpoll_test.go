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

// TestClientPollFailsClosed: while the background poll cannot read the
// clients change counter (here: every read connection is busy), the cache
// is not trusted: a client removed by another process stops being served
// from memory (a lookup reads the database, or fails), instead of
// authenticating for as long as the poll keeps failing.
func TestClientPollFailsClosed(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	server, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	cli, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	c := nv.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}, JWKS: []byte(`{"keys":[]}`),
		Scopes: []string{nv.ScopeOpenID}, CreatedAt: time.Unix(1_700_000_000, 0).UTC()}
	if err := cli.PutClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Client(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	// Take every read connection of the server and keep it.
	var held []*sql.Conn
	for range max(4, runtime.GOMAXPROCS(0)) {
		conn, err := server.r.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, conn)
	}
	defer func() {
		for _, conn := range held {
			conn.Close()
		}
	}()
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
