package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/sqlite"
	"github.com/numbergate/numbergate/internal/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) nv.Store {
		s, err := sqlite.Open(t.Context(), t.TempDir())
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	// Characters that mean something in a URI must not confuse the DSN.
	dir := filepath.Join(t.TempDir(), "data dir #1?x=%20", "nested")
	s, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	c := nv.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}, JWKS: []byte(`{"keys":[]}`),
		Scopes: []string{nv.ScopeOpenID}, Purposes: []string{nv.AnyPurpose}, RequirePKCE: true,
		CreatedAt: time.Unix(1_700_000_000, 123).UTC()}
	k := nv.SigningKey{ID: "k1", Algorithm: "ES256", PrivateJWK: []byte(`{"kty":"EC"}`), CreatedAt: time.Unix(1_700_000_000, 0).UTC()}
	if err := s.PutClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.AddSigningKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	for _, name := range []string{dir, filepath.Join(dir, sqlite.FileName)} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %v, want no access for group and others", name, perm)
		}
		if !fi.IsDir() && fi.Size() == 0 {
			t.Errorf("%s is empty: SQLite wrote its data elsewhere", name)
		}
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 {
		t.Errorf("data directory holds %v (%v), want only %s", entries, err, sqlite.FileName)
	}

	s, err = sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatalf("re-Open: %v", err)
	}
	defer s.Close()
	got, err := s.Client(ctx, c.ID)
	if err != nil {
		t.Fatalf("Client after re-Open: %v", err)
	}
	if got.ID != c.ID || !got.CreatedAt.Equal(c.CreatedAt) || string(got.JWKS) != string(c.JWKS) ||
		!got.RequirePKCE || len(got.RedirectURIs) != 1 || got.RedirectURIs[0] != c.RedirectURIs[0] {
		t.Errorf("Client after re-Open = %+v, want %+v", got, c)
	}
	ks, err := s.SigningKeys(ctx)
	if err != nil {
		t.Fatalf("SigningKeys after re-Open: %v", err)
	}
	if len(ks) != 1 || ks[0].ID != k.ID || string(ks[0].PrivateJWK) != string(k.PrivateJWK) || !ks[0].CreatedAt.Equal(k.CreatedAt) {
		t.Errorf("SigningKeys after re-Open = %+v, want [%+v]", ks, k)
	}
	if err := s.AddSigningKey(ctx, k); !errors.Is(err, nv.ErrAlreadyExists) {
		t.Errorf("AddSigningKey(same id) after re-Open: %v, want ErrAlreadyExists", err)
	}
}

// TestStaticRoutesDuplicate checks that a map naming a prefix twice is
// refused and leaves the previous map in place.
func TestStaticRoutesDuplicate(t *testing.T) {
	ctx := t.Context()
	s, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old := []nv.StaticRoute{{Prefix: netip.MustParsePrefix("10.0.0.1/32"), MSISDN: "+34600000001"}}
	if err := s.ReplaceStaticRoutes(ctx, old); err != nil {
		t.Fatal(err)
	}
	dup := []nv.StaticRoute{
		{Prefix: netip.MustParsePrefix("10.0.0.2/32"), MSISDN: "+34600000002"},
		{Prefix: netip.MustParsePrefix("10.0.0.2/32"), MSISDN: "+34600000003"},
	}
	if err := s.ReplaceStaticRoutes(ctx, dup); !errors.Is(err, nv.ErrAlreadyExists) {
		t.Errorf("ReplaceStaticRoutes(duplicate prefix) = %v, want ErrAlreadyExists", err)
	}
	got, err := s.StaticRoutes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != old[0] {
		t.Errorf("StaticRoutes after a refused replace = %v, want %v", got, old)
	}
}

// TestConcurrentWriters checks that many writers at once neither fail with
// SQLITE_BUSY nor lose a write.
func TestConcurrentWriters(t *testing.T) {
	ctx := t.Context()
	s, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 50
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- s.SaveToken(ctx, nv.AccessToken{Hash: fmt.Sprintf("h-%d", i), ExpiresAt: time.Now().Add(time.Minute)})
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	for i := range n {
		if _, err := s.Token(ctx, fmt.Sprintf("h-%d", i)); err != nil {
			t.Errorf("token %d: %v", i, err)
		}
	}
}

func BenchmarkConsumeToken(b *testing.B) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	tok := nv.AccessToken{
		ClientID: "app", MSISDN: "+34600000001", Scopes: []string{nv.ScopeOpenID, nv.ScopeVerify},
		Purpose: "dpv:FraudPreventionAndDetection", AuthMethod: nv.AuthNetwork, Source: "radius",
		IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute),
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		tok.Hash = fmt.Sprintf("%064x", i)
		if err := s.SaveToken(ctx, tok); err != nil {
			b.Fatal(err)
		}
		if _, err := s.ConsumeToken(ctx, tok.Hash, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkConsumeTokenParallel(b *testing.B) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	var seq atomicCounter
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tok := nv.AccessToken{Hash: fmt.Sprintf("%064x", seq.next()), ClientID: "app", MSISDN: "+34600000001",
				Scopes: []string{nv.ScopeVerify}, AuthMethod: nv.AuthNetwork, IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute)}
			if err := s.SaveToken(ctx, tok); err != nil {
				b.Fatal(err)
			}
			if _, err := s.ConsumeToken(ctx, tok.Hash, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}
