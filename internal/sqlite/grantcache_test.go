package sqlite

import (
	"errors"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

// TestGrantByAuthCodeFromMemory: a grant created here is read by its code
// from memory, as the database holds it (another process reads the same),
// with its data the caller's own; once its code is redeemed (RedeemGrant
// or IssueToken) or it is revoked, the read is the database's: consumed,
// or not found. A refused creation (the id taken) remembers nothing.
func TestGrantByAuthCodeFromMemory(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s, other := openDir(t, dir), openDir(t, dir) // other: another process
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	for _, g := range []nv.Grant{
		{ID: "g-redeem", AuthCode: "c-redeem", Data: []byte(`{"n":1}`), ExpiresAt: exp},
		{ID: "g-issue", AuthCode: "c-issue", Data: []byte(`{"n":2}`), ExpiresAt: exp},
		{ID: "g-revoke", AuthCode: "c-revoke", Data: []byte(`{"n":3}`), ExpiresAt: exp},
	} {
		if err := s.CreateGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
		if _, ok := s.grants.get(g.AuthCode, time.Now()); !ok {
			t.Errorf("%s: not remembered after its creation", g.ID)
		}
		mine, err := s.GrantByAuthCode(ctx, g.AuthCode)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := other.GrantByAuthCode(ctx, g.AuthCode)
		if err != nil {
			t.Fatal(err)
		}
		if mine.ID != theirs.ID || string(mine.Data) != string(theirs.Data) || mine.CodeConsumed || theirs.CodeConsumed ||
			!mine.ExpiresAt.Equal(theirs.ExpiresAt) {
			t.Errorf("%s: from memory %+v, from the database %+v", g.ID, mine, theirs)
		}
		mine.Data[0] = 'X'
		if again, _ := s.GrantByAuthCode(ctx, g.AuthCode); string(again.Data) != string(g.Data) {
			t.Errorf("%s: a caller's change to the data read reached the store: %q", g.ID, again.Data)
		}
	}
	if err := s.CreateGrant(ctx, nv.Grant{ID: "g-redeem", AuthCode: "c-other", Data: []byte("{}"), ExpiresAt: exp}); !errors.Is(err, nv.ErrAlreadyExists) {
		t.Fatalf("a taken id: %v, want nv.ErrAlreadyExists", err)
	}
	if _, ok := s.grants.get("c-other", time.Now()); ok {
		t.Error("a refused grant was remembered")
	}

	if err := s.RedeemGrant(ctx, "g-redeem", []byte(`{"n":1,"used":true}`), time.Now()); err != nil {
		t.Fatal(err)
	}
	tok := liveToken("t-issued")
	tok.GrantID = "g-issue"
	err := s.IssueToken(ctx, nv.TokenIssue{Token: tok, GrantData: []byte(`{"n":2,"used":true}`), Now: time.Now(),
		Usage: nv.UsageRecord{At: time.Now(), ClientID: "app", Event: nv.UsageTokenIssued, Operation: "token", Result: "OK"}})
	if err != nil {
		t.Fatal(err)
	}
	for code, data := range map[string]string{"c-redeem": `{"n":1,"used":true}`, "c-issue": `{"n":2,"used":true}`} {
		g, err := s.GrantByAuthCode(ctx, code)
		if err != nil || !g.CodeConsumed || string(g.Data) != data {
			t.Errorf("%s after its redemption: %+v, %v; want consumed with %s", code, g, err, data)
		}
	}
	if err := s.RevokeGrant(ctx, "g-revoke"); err != nil {
		t.Fatal(err)
	}
	if g, err := s.GrantByAuthCode(ctx, "c-revoke"); !errors.Is(err, nv.ErrNotFound) {
		t.Errorf("a revoked grant: %+v, %v; want nv.ErrNotFound", g, err)
	}
}
