package postgres_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"testing"

	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/postgres"
	"github.com/numbergate/numbergate/internal/postgres/pgtest"
	"github.com/numbergate/numbergate/internal/storetest"
)

// open returns a store on a fresh schema of the test server.
func open(t testing.TB) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), postgres.Options{DSN: pgtest.DSN(t)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) nv.Store { return open(t) })
}

// TestSaveTokenRevokeRace interleaves SaveToken and RevokeGrant of the same
// grant many times: whatever the order, a revoked grant never keeps a token.
func TestSaveTokenRevokeRace(t *testing.T) {
	s := open(t)
	defer s.Close()
	ctx := t.Context()
	now := time.Now()
	for i := range 50 {
		gid := fmt.Sprintf("g-%d", i)
		if err := s.CreateGrant(ctx, nv.Grant{ID: gid, AuthCode: "c-" + gid, ExpiresAt: now.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for j := range 4 {
			wg.Go(func() {
				<-start
				err := s.SaveToken(ctx, nv.AccessToken{Hash: fmt.Sprintf("h-%d-%d", i, j), GrantID: gid, ExpiresAt: now.Add(time.Minute)})
				if err != nil && !errors.Is(err, nv.ErrNotFound) {
					t.Errorf("SaveToken: %v", err)
				}
			})
		}
		wg.Go(func() {
			<-start
			if err := s.RevokeGrant(ctx, gid); err != nil {
				t.Errorf("RevokeGrant: %v", err)
			}
		})
		close(start)
		wg.Wait()
		for j := range 4 {
			if _, err := s.Token(ctx, fmt.Sprintf("h-%d-%d", i, j)); !errors.Is(err, nv.ErrNotFound) {
				t.Fatalf("round %d: token %d of a revoked grant is still stored (%v)", i, j, err)
			}
		}
	}
}

// TestMigrateConcurrently opens the same empty schema from several nodes
// at once: the advisory lock lets exactly one apply each migration.
func TestMigrateConcurrently(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		applied []int
	)
	for range 4 {
		wg.Go(func() {
			got, err := postgres.Migrate(ctx, postgres.Options{DSN: dsn})
			if err != nil {
				t.Errorf("Migrate: %v", err)
			}
			mu.Lock()
			applied = append(applied, got...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(applied) != postgres.SchemaVersion() {
		t.Errorf("migrations applied %v across nodes, want each of 1..%d once", applied, postgres.SchemaVersion())
	}
	s, err := postgres.Open(ctx, postgres.Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping after migration: %v", err)
	}
}

// TestUnreachable checks that a database nobody answers for is
// nv.ErrUnavailable, for Open and for calls on an open store.
func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, err = postgres.Open(t.Context(), postgres.Options{DSN: "postgres://postgres@" + addr + "/test?sslmode=disable"})
	if !errors.Is(err, nv.ErrUnavailable) {
		t.Errorf("Open(unreachable) = %v, want ErrUnavailable", err)
	}
}

// TestSessionForAnyLength checks that the most specific prefix wins,
// whatever the lengths.
func TestSessionForAnyLength(t *testing.T) {
	s := open(t)
	defer s.Close()
	ctx := t.Context()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, p := range []string{"2001:db8::/32", "2001:db8:1::/48", "2001:db8:1:2::/61", "2001:db8:1:2::7/127", "10.0.0.0/8", "10.1.2.0/23"} {
		ns := nv.NetworkSession{Prefix: netip.MustParsePrefix(p), MSISDN: nv.PhoneNumber(fmt.Sprintf("+3460000000%d", i)),
			SessionID: p, StartedAt: at, UpdatedAt: at}
		if err := s.StartSession(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	for addr, want := range map[string]string{
		"2001:db8::1":     "2001:db8::/32",
		"2001:db8:1:9::1": "2001:db8:1::/48",
		"2001:db8:1:5::1": "2001:db8:1:2::/61",
		"2001:db8:1:2::6": "2001:db8:1:2::7/127",
		"10.1.3.255":      "10.1.2.0/23",
		"10.200.0.1":      "10.0.0.0/8",
		"::ffff:10.1.2.3": "10.1.2.0/23",
	} {
		got, err := s.SessionFor(ctx, netip.MustParseAddr(addr), at)
		if err != nil || got.SessionID != want {
			t.Errorf("SessionFor(%s) = %q, %v; want %s", addr, got.SessionID, err, want)
		}
	}
}

// TestSessionWritesBatched drives many concurrent network-session writes,
// which the store commits in batches: every caller still gets its own
// outcome.
func TestSessionWritesBatched(t *testing.T) {
	s := open(t)
	defer s.Close()
	ctx := t.Context()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const n = 400
	prefix := func(i int) netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 77, byte(i >> 8), byte(i)}), 32)
	}
	sess := func(i int, client string) nv.NetworkSession {
		return nv.NetworkSession{Prefix: prefix(i), MSISDN: nv.PhoneNumber(fmt.Sprintf("+34611%06d", i)),
			SessionID: fmt.Sprint("s", i), Client: client, StartedAt: at, UpdatedAt: at}
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := s.StartSession(ctx, sess(i, "gw-a")); err != nil {
				t.Errorf("StartSession %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	for i := range n {
		wg.Go(func() {
			if i%2 == 0 {
				// Held by gw-a: gw-b's Interim changes nothing.
				if err := s.UpsertSession(ctx, sess(i, "gw-b")); !errors.Is(err, nv.ErrNotFound) {
					t.Errorf("UpsertSession %d by another client: %v, want ErrNotFound", i, err)
				}
				return
			}
			ok, err := s.StopSession(ctx, "gw-a", prefix(i), fmt.Sprint("s", i))
			if err != nil || !ok {
				t.Errorf("StopSession %d = %v, %v; want true", i, ok, err)
			}
		})
	}
	wg.Wait()
	all, err := s.NetworkSessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != n/2 {
		t.Fatalf("%d sessions left, want %d", len(all), n/2)
	}
	for _, ns := range all {
		if ns.Client != "gw-a" {
			t.Errorf("session %v now held by %q", ns.Prefix, ns.Client)
		}
	}
}

// TestCloseTwice: closing a store twice is harmless, and a write after
// Close fails instead of hanging.
func TestCloseTwice(t *testing.T) {
	s := open(t)
	s.Close()
	s.Close()
	err := s.StartSession(t.Context(), nv.NetworkSession{Prefix: netip.MustParsePrefix("192.0.2.9/32"), MSISDN: "+34600000009"})
	if err == nil {
		t.Error("StartSession after Close succeeded")
	}
}
