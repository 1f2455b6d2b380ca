package sqlite_test

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/sqlite"
)

// TestClientCacheSeesOtherProcess: the server caches clients, yet a client
// added through another connection to the database (numbergate clients add
// runs as another process) works at the server's next lookup, and one
// changed (a rotated key) or removed there is seen within the poll bound
// (clientcache.Refresh, 100 ms; the test allows a minute for a loaded machine).
// The server's own changes are seen at once.
func TestClientCacheSeesOtherProcess(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	server, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	cli, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	if _, err := server.Client(ctx, "app"); !errors.Is(err, nv.ErrNotFound) {
		t.Fatalf("unknown client: %v", err)
	}
	c := nv.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}, JWKS: []byte(`{"keys":[]}`),
		Scopes: []string{nv.ScopeOpenID}, Purposes: []string{"dpv:FraudPreventionAndDetection"}, CreatedAt: time.Unix(1_700_000_000, 0).UTC()}
	if err := cli.PutClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := server.Client(ctx, "app")
	if err != nil || !slices.Equal(got.Scopes, c.Scopes) {
		t.Fatalf("client added by another process, not at the next lookup: %+v, %v", got, err)
	}
	// Cached now; a caller changing what it got does not change the cache.
	got.Scopes[0] = "tampered"
	if again, _ := server.Client(ctx, "app"); again.Scopes[0] != nv.ScopeOpenID {
		t.Errorf("the cache returned a shared slice: %v", again.Scopes)
	}

	// A rotated key and a new scope, written by the other process.
	c.Scopes = []string{nv.ScopeOpenID, nv.ScopeVerify}
	c.JWKS = []byte(`{"keys":[{"kid":"next"}]}`)
	if err := cli.PutClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	eventually(t, "client changed by another process", func() error {
		got, err := server.Client(ctx, "app")
		if err != nil {
			return err
		}
		if !slices.Equal(got.Scopes, c.Scopes) || string(got.JWKS) != string(c.JWKS) {
			return fmt.Errorf("still %v %s", got.Scopes, got.JWKS)
		}
		return nil
	})
	// Once seen, never the old one again.
	if got, err := server.Client(ctx, "app"); err != nil || string(got.JWKS) != string(c.JWKS) {
		t.Errorf("after the change: %s, %v", got.JWKS, err)
	}

	if err := cli.DeleteClient(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "client removed by another process", func() error {
		if _, err := server.Client(ctx, "app"); !errors.Is(err, nv.ErrNotFound) {
			return fmt.Errorf("still found (%v)", err)
		}
		return nil
	})

	// The server's own changes: at once.
	if err := server.PutClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Client(ctx, "app"); err != nil {
		t.Fatalf("own add: %v", err)
	}
	c.Scopes = []string{nv.ScopeOpenID}
	if err := server.PutClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got, err := server.Client(ctx, "app"); err != nil || !slices.Equal(got.Scopes, c.Scopes) {
		t.Errorf("own change not seen at once: %+v, %v", got, err)
	}
	if err := server.DeleteClient(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Client(ctx, "app"); !errors.Is(err, nv.ErrNotFound) {
		t.Errorf("own removal not seen at once: %v", err)
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

// BenchmarkClient is the client lookup /authorize and /token make several
// times per request (served from the cache, no database read).
func BenchmarkClient(b *testing.B) {
	ctx := b.Context()
	s, err := sqlite.Open(ctx, b.TempDir())
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

// TestSessionLengthsFromOtherProcess: the identity lookup probes only the
// prefix lengths in use; a session at a length first written by another
// process is found once the server re-reads the lengths (within a second
// or two), and one written by the server itself at once.
func TestSessionLengthsFromOtherProcess(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	server, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	other, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	now := time.Now()
	sess := func(prefix, msisdn string) nv.NetworkSession {
		return nv.NetworkSession{Prefix: netip.MustParsePrefix(prefix), MSISDN: nv.PhoneNumber(msisdn), SessionID: "s",
			NAS: "gw", Client: "gw", StartedAt: now, UpdatedAt: now}
	}
	if err := server.StartSession(ctx, sess("10.1.0.1/32", "+34600000001")); err != nil {
		t.Fatal(err)
	}
	if got, err := server.SessionFor(ctx, netip.MustParseAddr("10.1.0.1"), time.Time{}); err != nil || got.MSISDN != "+34600000001" {
		t.Fatalf("own /32 at once: %+v, %v", got, err)
	}
	if err := other.StartSession(ctx, sess("10.2.0.0/30", "+34600000002")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute) // generous: a loaded machine is slow
	for {
		got, err := server.SessionFor(ctx, netip.MustParseAddr("10.2.0.3"), time.Time{})
		if err == nil {
			if got.MSISDN != "+34600000002" {
				t.Fatalf("/30 from another process: %+v", got)
			}
			break
		}
		if !errors.Is(err, nv.ErrNotFound) || time.Now().After(deadline) {
			t.Fatalf("/30 written by another process not found after a minute: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The more specific session still wins where both hold the address.
	if err := server.StartSession(ctx, sess("10.2.0.2/32", "+34600000003")); err != nil {
		t.Fatal(err)
	}
	if got, _ := server.SessionFor(ctx, netip.MustParseAddr("10.2.0.2"), time.Time{}); got.MSISDN != "+34600000003" {
		t.Errorf("most specific: %+v", got)
	}
	if got, _ := server.SessionFor(ctx, netip.MustParseAddr("10.2.0.1"), time.Time{}); got.MSISDN != "+34600000002" {
		t.Errorf("the /30 elsewhere: %+v", got)
	}
}
