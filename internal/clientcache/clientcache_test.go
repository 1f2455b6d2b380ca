package clientcache

import (
	"context"
	"errors"
	"testing"

	"github.com/numbergate/numbergate/internal/nv"
)

// TestDropRefusesOlderReads: once the cache was dropped because the change
// counter could not be read (after the store's own change, or by a failed
// poll), a lookup that read its row before the drop, under the counter
// value the cache still holds, is not cached: only a counter read that
// succeeds lets the cache fill again. (Otherwise a removed client's row,
// read just before its removal committed, is served until the next
// successful poll.)
func TestDropRefusesOlderReads(t *testing.T) {
	var c Cache
	old := nv.Client{ID: "app", JWKS: []byte(`{"keys":[{"kid":"old"}]}`)}
	c.Advance(5)
	c.Put(5, old)
	if _, ok := c.Get("app"); !ok {
		t.Fatal("not cached")
	}
	c.Drop() // the counter read after a change failed
	c.Put(5, old)
	if got, ok := c.Get("app"); ok {
		t.Fatalf("a row read before the drop was cached again: %s", got.JWKS)
	}
	if c.Empty() {
		t.Error("a dropped cache reports empty: the poll that must revalidate it would be skipped")
	}
	c.Advance(6) // a poll reads the counter again
	c.Put(6, old)
	if _, ok := c.Get("app"); !ok {
		t.Error("not cached after a successful counter read")
	}
}

// TestCounterMoves: a counter that moved, up or down (a database that lost
// commits in a failover), drops every cached client; a lower value never
// lets rows read under it be cached.
func TestCounterMoves(t *testing.T) {
	var c Cache
	app := nv.Client{ID: "app"}
	c.Put(10, app)
	c.Advance(10)
	if _, ok := c.Get("app"); !ok {
		t.Fatal("not cached under an unchanged counter")
	}
	c.Advance(11)
	if _, ok := c.Get("app"); ok {
		t.Error("still cached after the counter grew")
	}
	c.Put(11, app)
	c.Advance(8) // the new primary lost changes 9 to 11
	if _, ok := c.Get("app"); ok {
		t.Error("still cached after the counter went back")
	}
	c.Put(8, app)
	if _, ok := c.Get("app"); ok {
		t.Error("a row read under a lower counter was cached")
	}
	c.Put(12, app)
	if _, ok := c.Get("app"); !ok {
		t.Error("not cached once the counter passed the highest value seen")
	}
}

// TestCheckFailsClosed: a counter read that fails drops the cache.
func TestCheckFailsClosed(t *testing.T) {
	var c Cache
	c.Put(1, nv.Client{ID: "app"})
	broken := errors.New("broken")
	if err := c.Check(t.Context(), func(context.Context) (int64, error) { return 0, broken }); !errors.Is(err, broken) {
		t.Fatalf("Check = %v", err)
	}
	if _, ok := c.Get("app"); ok {
		t.Error("served from memory after a failed counter read")
	}
	c.Put(1, nv.Client{ID: "app"})
	if _, ok := c.Get("app"); ok {
		t.Error("cached again before a counter read succeeded")
	}
	if err := c.Check(t.Context(), func(context.Context) (int64, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	c.Put(1, nv.Client{ID: "app"})
	if _, ok := c.Get("app"); !ok {
		t.Error("not cached after a successful counter read")
	}
}

// TestGetCopies: a caller changing what Get returned does not change the
// cache.
func TestGetCopies(t *testing.T) {
	var c Cache
	c.Put(1, nv.Client{ID: "app", RedirectURIs: []string{"https://a.example/cb"}})
	got, _ := c.Get("app")
	got.RedirectURIs[0] = "https://evil.example/cb"
	if again, _ := c.Get("app"); again.RedirectURIs[0] != "https://a.example/cb" {
		t.Errorf("the cache was changed through a returned client: %v", again.RedirectURIs)
	}
}
