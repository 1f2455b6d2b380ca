package sqlite

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

// TestTokenClient: TokenClient names the client of a token stored here
// (from memory), of one stored by another process (from the database), and
// of a spent one, as Token does; an unknown hash, a token of a revoked
// grant and an expired-then-collected token are nv.ErrNotFound.
func TestTokenClient(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s, other := openDir(t, dir), openDir(t, dir) // other: another process
	want := func(hash, client string) {
		t.Helper()
		got, err := s.TokenClient(ctx, hash)
		if client == "" {
			if !errors.Is(err, nv.ErrNotFound) {
				t.Errorf("TokenClient(%s) = %q, %v; want nv.ErrNotFound", hash, got, err)
			}
			return
		}
		if err != nil || got != client {
			t.Errorf("TokenClient(%s) = %q, %v; want %q", hash, got, err, client)
		}
	}

	mine := liveToken("t-mine")
	mine.ClientID = "app-mine"
	if err := s.SaveToken(ctx, mine); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.tokc.get("t-mine", time.Now()); !ok {
		t.Error("a token stored here is not remembered")
	}
	want("t-mine", "app-mine")

	theirs := liveToken("t-theirs")
	theirs.ClientID = "app-theirs"
	if err := other.SaveToken(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	want("t-theirs", "app-theirs")
	want("t-unknown", "")

	if _, err := s.ConsumeToken(ctx, "t-mine", time.Now()); err != nil {
		t.Fatal(err)
	}
	want("t-mine", "app-mine") // spent: the guard still counts the call

	// A grant's tokens go with its revocation, remembered or not.
	exp := time.Now().Add(time.Hour)
	if err := s.CreateGrant(ctx, nv.Grant{ID: "g1", AuthCode: "c1", Data: []byte("{}"), ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	granted := liveToken("t-granted")
	granted.GrantID = "g1"
	if err := s.SaveToken(ctx, granted); err != nil {
		t.Fatal(err)
	}
	want("t-granted", "app")
	if err := s.RevokeGrant(ctx, "g1"); err != nil {
		t.Fatal(err)
	}
	want("t-granted", "")
	want("t-theirs", "app-theirs")

	// An expired token is not answered from memory: once collected, it is
	// gone.
	old := liveToken("t-old")
	old.ExpiresAt = time.Now().Add(-time.Second)
	if err := s.SaveToken(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.tokc.get("t-old", time.Now()); ok {
		t.Error("an expired token answered from memory")
	}
	want("t-old", "app")
	if _, err := s.Collect(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	want("t-old", "")
}

// TestTokenClientFailedWriteRemembersNothing: a token whose write was
// refused (its hash taken) leaves the remembered client as it was.
func TestTokenClientFailedWriteRemembersNothing(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	first := liveToken("t-dup")
	first.ClientID = "app-first"
	if err := s.SaveToken(ctx, first); err != nil {
		t.Fatal(err)
	}
	second := liveToken("t-dup")
	second.ClientID = "app-second"
	if err := s.SaveToken(ctx, second); !errors.Is(err, nv.ErrAlreadyExists) {
		t.Fatalf("second SaveToken = %v, want nv.ErrAlreadyExists", err)
	}
	if got, err := s.TokenClient(ctx, "t-dup"); err != nil || got != "app-first" {
		t.Errorf("TokenClient = %q, %v; want app-first", got, err)
	}
}

// TestTokenClientsBounded: the remembered tokens never exceed two
// generations of maxTokenClients; the oldest go first, and a generation
// also ends after tokenClientsGen.
func TestTokenClientsBounded(t *testing.T) {
	c := newTokenClients()
	now := time.Now()
	exp := now.Add(time.Hour)
	n := 2*maxTokenClients + 10
	for i := range n {
		c.add(fmt.Sprint("h", i), "app", exp, now)
	}
	if held := len(c.r.cur) + len(c.r.prev); held > 2*maxTokenClients {
		t.Errorf("%d entries held, want at most %d", held, 2*maxTokenClients)
	}
	if _, ok := c.get("h0", now); ok {
		t.Error("the oldest entry outlived two generations")
	}
	if _, ok := c.get(fmt.Sprint("h", n-1), now); !ok {
		t.Error("the newest entry is missing")
	}
	later := now.Add(tokenClientsGen)
	c.add("late-1", "app", exp, later)
	c.add("late-2", "app", exp, later.Add(tokenClientsGen))
	if _, ok := c.get(fmt.Sprint("h", n-1), later); ok {
		t.Error("an entry outlived two generations of time")
	}
	if _, ok := c.get("late-1", later); !ok {
		t.Error("the previous generation's entry is missing")
	}
}
