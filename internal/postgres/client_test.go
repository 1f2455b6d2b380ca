package postgres_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/postgres"
	"github.com/numbergate/numbergate/internal/postgres/pgtest"
)

// BenchmarkClient is the client lookup /authorize and /token make several
// times per request.
//
//	NUMBERGATE_TEST_POSTGRES_DSN=... go test -run '^$' -bench Client -benchtime 2000x ./internal/postgres
func BenchmarkClient(b *testing.B) {
	ctx := b.Context()
	s, err := postgres.Open(ctx, postgres.Options{DSN: pgtest.DSN(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := nv.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}, JWKS: []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`),
		Scopes: nv.Scopes, Purposes: []string{"dpv:FraudPreventionAndDetection"}, RequirePKCE: true}
	if err := s.PutClient(ctx, c); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Client(ctx, "app"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestClientCacheAcrossNodes: two stores on one database (two nodes). Each
// caches clients, yet a client added on one node works on the other at its
// next lookup, and one changed there (a rotated key, other redirect URIs, a
// quota) or removed (also by TRUNCATE, by hand) is seen by the other within
// the poll bound (clientcache.Refresh, 100 ms; the test allows a minute for
// a loaded machine). A node's own changes are seen at once.
func TestClientCacheAcrossNodes(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.DSN(t)
	a, err := postgres.Open(ctx, postgres.Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := postgres.Open(ctx, postgres.Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	if _, err := b.Client(ctx, "app"); !errors.Is(err, nv.ErrNotFound) {
		t.Fatalf("Client before it exists: %v", err)
	}
	c := nv.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}, JWKS: []byte(`{"keys":[{"kid":"one"}]}`),
		Scopes: []string{nv.ScopeOpenID}, CreatedAt: time.Unix(1_700_000_000, 0).UTC()}
	if err := a.PutClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	// Added on A: found on B at once (a miss reads the database), and then
	// cached there.
	if got, err := b.Client(ctx, "app"); err != nil || string(got.JWKS) != string(c.JWKS) {
		t.Fatalf("client added on another node, at B's next lookup: %+v, %v", got, err)
	}

	// Changed on A: B sees each change within the bound.
	c.JWKS = []byte(`{"keys":[{"kid":"two"}]}`)
	if err := a.PutClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a key changed on another node", func() error {
		got, err := b.Client(ctx, "app")
		if err != nil {
			return err
		}
		if string(got.JWKS) != string(c.JWKS) {
			return fmt.Errorf("still the old key %s", got.JWKS)
		}
		return nil
	})
	c.RedirectURIs = []string{"https://app.example/other"}
	c.QuotaPerDay = 5
	if err := a.PutClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	eventually(t, "redirect URIs and quota changed on another node", func() error {
		got, err := b.Client(ctx, "app")
		if err != nil {
			return err
		}
		if !slices.Equal(got.RedirectURIs, c.RedirectURIs) || got.QuotaPerDay != 5 {
			return fmt.Errorf("still %v, quota %d", got.RedirectURIs, got.QuotaPerDay)
		}
		return nil
	})

	// Removed on A: B stops serving it within the bound.
	if err := a.DeleteClient(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a client removed on another node", func() error {
		if _, err := b.Client(ctx, "app"); !errors.Is(err, nv.ErrNotFound) {
			return fmt.Errorf("still served (%v)", err)
		}
		return nil
	})

	// B's own changes: at once.
	if err := b.PutClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Client(ctx, "app"); err != nil {
		t.Fatalf("own addition: %v", err)
	}
	c.JWKS = []byte(`{"keys":[{"kid":"three"}]}`)
	if err := b.PutClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Client(ctx, "app"); err != nil || string(got.JWKS) != string(c.JWKS) {
		t.Fatalf("own key change not seen at once: %s, %v", got.JWKS, err)
	}
	if err := b.DeleteClient(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Client(ctx, "app"); !errors.Is(err, nv.ErrNotFound) {
		t.Fatalf("own removal not seen at once: %v", err)
	}

	// A TRUNCATE by hand (no node involved) counts as a change too.
	if err := b.PutClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Client(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "TRUNCATE clients"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "clients truncated by hand", func() error {
		if _, err := a.Client(ctx, "app"); !errors.Is(err, nv.ErrNotFound) {
			return fmt.Errorf("still served (%v)", err)
		}
		return nil
	})
}

// TestClientPollFailsClosed: while a node's poll cannot read the clients
// change counter (here: its table is renamed away, in the same transaction
// that removes the client, so the removal cannot be seen through the
// counter), the node does not trust its cache: the removed client stops
// being served from memory (a lookup reads the database, and fails),
// instead of authenticating for as long as the poll keeps failing. Once
// the counter can be read again, the removal is what the node answers.
func TestClientPollFailsClosed(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.DSN(t)
	node, err := postgres.Open(ctx, postgres.Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	c := nv.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}, JWKS: []byte(`{"keys":[]}`),
		Scopes: []string{nv.ScopeOpenID}, CreatedAt: time.Unix(1_700_000_000, 0).UTC()}
	if err := node.PutClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := node.Client(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM clients WHERE id = 'app'"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "ALTER TABLE changes RENAME TO changes_away")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the cache dropped while the counter cannot be read", func() error {
		_, err := node.Client(ctx, "app")
		if err == nil {
			return errors.New("the removed client is still served from memory")
		}
		if errors.Is(err, nv.ErrNotFound) {
			t.Fatalf("the lookup read the database without its counter: %v", err)
		}
		return nil
	})
	if _, err := conn.Exec(ctx, "ALTER TABLE changes_away RENAME TO changes"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the removal once the counter reads again", func() error {
		if _, err := node.Client(ctx, "app"); !errors.Is(err, nv.ErrNotFound) {
			return fmt.Errorf("lookup: %v", err)
		}
		return nil
	})
	// And the cache works again: a new client is cached and still served
	// after its counter is read by later polls.
	if err := node.PutClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := node.Client(ctx, "app"); err != nil {
		t.Fatal(err)
	}
}

// eventually calls f until it returns nil, failing the test if it has not
// within a minute (a generous deadline: the bound under test is 100 ms, but
// a loaded machine may run the poll late; no test asserts a timing).
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not seen within a minute: %v", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
