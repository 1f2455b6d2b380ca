package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/numbergate/numbergate/internal/nv"
)

// issue is a TokenIssue redeeming grantID with the token hash and the
// client assertion's jti (issuer app-a), at at(1).
func issue(grantID, hash, jti string) nv.TokenIssue {
	tok := token(hash, grantID, at(300))
	return nv.TokenIssue{
		JTI:       nv.JTI{Issuer: tok.ClientID, ID: jti, ExpiresAt: at(120)},
		GrantData: []byte("redeemed by " + hash),
		Token:     tok,
		Usage: nv.UsageRecord{At: at(1), ClientID: tok.ClientID, Event: nv.UsageTokenIssued, Operation: "token",
			Purpose: tok.Purpose, Scopes: tok.Scopes, Result: "OK", Source: tok.Source},
		Now: at(1),
	}
}

// unchanged checks that a refused IssueToken changed nothing: the grant
// (still g), no token with its hash, its jti still free (consumed here, as
// a check), and no usage record beyond want.
func unchanged(t *testing.T, s nv.Store, ti nv.TokenIssue, g nv.Grant, wantUsage int, what string) {
	t.Helper()
	ctx := t.Context()
	if g.ID != "" {
		got, err := s.Grant(ctx, g.ID)
		must(t, err, what+": Grant")
		equal(t, got, g, what+": the grant")
	}
	_, err := s.Token(ctx, ti.Token.Hash)
	wantErr(t, err, nv.ErrNotFound, what+": Token")
	if ti.JTI.ID != "" {
		must(t, s.ConsumeJTI(ctx, ti.JTI.Issuer, ti.JTI.ID, ti.JTI.ExpiresAt, ti.Now), what+": the jti was consumed")
	}
	usage(t, s, wantUsage, what)
}

// usage checks how many usage records are stored.
func usage(t *testing.T, s nv.Store, want int, what string) {
	t.Helper()
	recs, err := s.UsageRecords(t.Context(), at(-3600), at(3600))
	must(t, err, what+": UsageRecords")
	if len(recs) != want {
		t.Errorf("%s: %d usage records, want %d", what, len(recs), want)
	}
}

// testIssueToken: one IssueToken consumes the jti, redeems the code and
// stores the token and its usage record; a second redemption of the code
// (another jti) is ErrConsumed, not a replay, and changes nothing.
func testIssueToken(t *testing.T, s nv.Store) {
	ctx := t.Context()
	g := nv.Grant{ID: "g-1", AuthCode: "code-1", Data: []byte("before"), ExpiresAt: at(300)}
	must(t, s.CreateGrant(ctx, g), "CreateGrant")
	ti := issue(g.ID, "h-1", "jti-1")
	must(t, s.IssueToken(ctx, ti), "IssueToken")

	got, err := s.Grant(ctx, g.ID)
	must(t, err, "Grant")
	g.CodeConsumed, g.Data = true, ti.GrantData
	equal(t, got, g, "the grant after IssueToken")
	tok, err := s.Token(ctx, ti.Token.Hash)
	must(t, err, "Token")
	equal(t, tok, ti.Token, "the token")
	recs, err := s.UsageRecords(ctx, at(-3600), at(3600))
	must(t, err, "UsageRecords")
	equal(t, recs, []nv.UsageRecord{ti.Usage}, "the usage record")
	wantErr(t, s.ConsumeJTI(ctx, ti.JTI.Issuer, ti.JTI.ID, ti.JTI.ExpiresAt, at(2)), nv.ErrConsumed, "ConsumeJTI of the issued jti")

	again := issue(g.ID, "h-2", "jti-2")
	err = s.IssueToken(ctx, again)
	wantErr(t, err, nv.ErrConsumed, "IssueToken(code redeemed)")
	if errors.Is(err, nv.ErrJTIReplayed) {
		t.Errorf("IssueToken(code redeemed): %v is a replayed jti; the jti was fresh", err)
	}
	unchanged(t, s, again, g, 1, "IssueToken(code redeemed)")

	// A token without a grant is not issued this way.
	if err := s.IssueToken(ctx, issue("", "h-3", "jti-3")); err == nil {
		t.Error("IssueToken without a grant succeeded")
	}
}

// testIssueTokenReplayedJTI: a replayed jti is ErrJTIReplayed (an
// ErrConsumed) and changes nothing: the code is not redeemed (a fresh
// assertion still redeems it), no token, no usage record.
func testIssueTokenReplayedJTI(t *testing.T, s nv.Store) {
	ctx := t.Context()
	g := nv.Grant{ID: "g-1", AuthCode: "code-1", Data: []byte("before"), ExpiresAt: at(300)}
	must(t, s.CreateGrant(ctx, g), "CreateGrant")
	must(t, s.ConsumeJTI(ctx, "app-a", "jti-used", at(120), at(0)), "ConsumeJTI")
	ti := issue(g.ID, "h-1", "jti-used")
	err := s.IssueToken(ctx, ti)
	wantErr(t, err, nv.ErrJTIReplayed, "IssueToken(replayed jti)")
	wantErr(t, err, nv.ErrConsumed, "IssueToken(replayed jti)")
	ti.JTI.ID = "" // still consumed: not checked by unchanged
	unchanged(t, s, ti, g, 0, "IssueToken(replayed jti)")

	// The same jti of another issuer is independent.
	other := issue(g.ID, "h-2", "jti-used")
	other.JTI.Issuer = "app-b"
	must(t, s.IssueToken(ctx, other), "IssueToken(same jti, other issuer)")
	usage(t, s, 1, "after IssueToken(same jti, other issuer)")
}

// testIssueTokenRefused: a revoked, expired or unknown grant, or a taken
// token hash, refuses the whole op: the jti stays free, nothing is stored.
func testIssueTokenRefused(t *testing.T, s nv.Store) {
	ctx := t.Context()
	revoked := nv.Grant{ID: "g-revoked", AuthCode: "code-r", Data: []byte("r"), ExpiresAt: at(300)}
	must(t, s.CreateGrant(ctx, revoked), "CreateGrant(revoked)")
	must(t, s.RevokeGrant(ctx, revoked.ID), "RevokeGrant")
	revoked.Revoked = true
	ti := issue(revoked.ID, "h-r", "jti-r")
	wantErr(t, s.IssueToken(ctx, ti), nv.ErrNotFound, "IssueToken(revoked grant)")
	unchanged(t, s, ti, revoked, 0, "IssueToken(revoked grant)")

	expired := nv.Grant{ID: "g-expired", AuthCode: "code-e", Data: []byte("e"), ExpiresAt: at(1)}
	must(t, s.CreateGrant(ctx, expired), "CreateGrant(expired)")
	ti = issue(expired.ID, "h-e", "jti-e")
	wantErr(t, s.IssueToken(ctx, ti), nv.ErrNotFound, "IssueToken(expired grant)")
	unchanged(t, s, ti, expired, 0, "IssueToken(expired grant)")

	ti = issue("g-unknown", "h-u", "jti-u")
	wantErr(t, s.IssueToken(ctx, ti), nv.ErrNotFound, "IssueToken(unknown grant)")
	unchanged(t, s, ti, nv.Grant{}, 0, "IssueToken(unknown grant)")

	// The last step refused undoes the first ones.
	mustGrant(t, s, "g-taken")
	must(t, s.SaveToken(ctx, token("h-taken", "g-taken", at(300))), "SaveToken")
	fresh := nv.Grant{ID: "g-fresh", AuthCode: "code-f", Data: []byte("f"), ExpiresAt: at(300)}
	must(t, s.CreateGrant(ctx, fresh), "CreateGrant(fresh)")
	ti = issue(fresh.ID, "h-taken", "jti-f")
	wantErr(t, s.IssueToken(ctx, ti), nv.ErrAlreadyExists, "IssueToken(hash taken)")
	got, err := s.Grant(ctx, fresh.ID)
	must(t, err, "Grant(fresh)")
	equal(t, got, fresh, "the grant after IssueToken(hash taken)")
	must(t, s.ConsumeJTI(ctx, ti.JTI.Issuer, ti.JTI.ID, ti.JTI.ExpiresAt, ti.Now), "the jti after IssueToken(hash taken) was consumed")
	usage(t, s, 0, "IssueToken(hash taken)")
}

// testIssueTokenConcurrent: callers racing on one code (each with its own
// jti) and callers racing with one jti (each on its own code): exactly one
// wins each race; the losers change nothing, and exactly one token and one
// usage record are stored per race.
func testIssueTokenConcurrent(t *testing.T, s nv.Store) {
	ctx := t.Context()
	const n = 20
	mustGrant(t, s, "g-race")
	var (
		mu  sync.Mutex
		i   int
		tis []nv.TokenIssue
	)
	next := func(grant, jti string) nv.TokenIssue {
		mu.Lock()
		defer mu.Unlock()
		i++
		if jti == "" {
			jti = fmt.Sprintf("jti-%d", i)
		}
		ti := issue(grant, fmt.Sprintf("h-%d", i), jti)
		tis = append(tis, ti)
		return ti
	}
	errs := race(n, func() error { return s.IssueToken(ctx, next("g-race", "")) })
	exactlyOneWins(t, errs, nv.ErrConsumed)
	for _, err := range errs {
		if errors.Is(err, nv.ErrJTIReplayed) {
			t.Errorf("a loser of the code race: %v is a replayed jti", err)
		}
	}
	stored := 0
	for _, ti := range tis {
		if _, err := s.Token(ctx, ti.Token.Hash); err == nil {
			stored++
		} else if err := s.ConsumeJTI(ctx, ti.JTI.Issuer, ti.JTI.ID, ti.JTI.ExpiresAt, ti.Now); err != nil {
			t.Errorf("a loser's jti %s was consumed: %v", ti.JTI.ID, err)
		}
	}
	if stored != 1 {
		t.Errorf("code race: %d tokens stored, want 1", stored)
	}
	usage(t, s, 1, "code race")

	tis = nil
	for k := range n {
		mustGrant(t, s, fmt.Sprintf("g-%d", k))
	}
	var k int
	errs = race(n, func() error {
		mu.Lock()
		g := fmt.Sprintf("g-%d", k)
		k++
		mu.Unlock()
		return s.IssueToken(ctx, next(g, "jti-shared"))
	})
	exactlyOneWins(t, errs, nv.ErrJTIReplayed)
	stored = 0
	for _, ti := range tis {
		if _, err := s.Token(ctx, ti.Token.Hash); err == nil {
			stored++
			continue
		}
		if g, err := s.Grant(ctx, ti.Token.GrantID); err != nil || g.CodeConsumed {
			t.Errorf("a loser's grant %s: %+v %v, want not redeemed", ti.Token.GrantID, g, err)
		}
	}
	if stored != 1 {
		t.Errorf("jti race: %d tokens stored, want 1", stored)
	}
	usage(t, s, 2, "jti race")
}

// testIssueTokenVsRevokeConcurrent runs IssueToken and RevokeGrant on the
// same grant at once, many times: no token of a revoked grant survives,
// and the usage record is stored exactly when IssueToken succeeded.
func testIssueTokenVsRevokeConcurrent(t *testing.T, s nv.Store) {
	ctx := t.Context()
	issued := 0
	for i := range 30 {
		id := fmt.Sprintf("g-%d", i)
		mustGrant(t, s, id)
		ti := issue(id, "h-"+id, "jti-"+id)
		var issueErr error
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			issueErr = s.IssueToken(ctx, ti)
		})
		wg.Go(func() {
			<-start
			if err := s.RevokeGrant(ctx, id); err != nil {
				t.Errorf("RevokeGrant(%s): %v", id, err)
			}
		})
		close(start)
		wg.Wait()
		switch {
		case issueErr == nil:
			issued++
		case !errors.Is(issueErr, nv.ErrNotFound):
			t.Errorf("IssueToken(%s) racing RevokeGrant: %v, want nil or ErrNotFound", id, issueErr)
		}
		if _, err := s.Token(ctx, ti.Token.Hash); !errors.Is(err, nv.ErrNotFound) {
			t.Fatalf("round %d: token of a revoked grant is stored (Token: %v; IssueToken: %v)", i, err, issueErr)
		}
		usage(t, s, issued, fmt.Sprintf("round %d (IssueToken: %v)", i, issueErr))
	}
}

// testIssueTokenMixedBatch races IssueTokens that fail at their last steps
// (a taken token hash: after their jti was consumed and their code
// redeemed) with IssueTokens that succeed, and with the same jti id under
// another issuer (single use is per client): every failed one changed
// nothing (its jti free, its code not redeemed, no usage record), every
// other one stored all of its writes.
func testIssueTokenMixedBatch(t *testing.T, s nv.Store) {
	ctx := t.Context()
	mustGrant(t, s, "g-first")
	must(t, s.IssueToken(ctx, issue("g-first", "h-taken", "jti-first")), "IssueToken(g-first)")
	const n = 24
	tis := make([]nv.TokenIssue, n)
	for k := range n {
		id := fmt.Sprintf("g-%d", k)
		mustGrant(t, s, id)
		switch k % 3 {
		case 0: // fails at the token: its hash is taken
			tis[k] = issue(id, "h-taken", fmt.Sprintf("jti-%d", k))
		case 1: // succeeds
			tis[k] = issue(id, "h-"+id, fmt.Sprintf("jti-%d", k))
		case 2: // succeeds: jti-first is app-a's, this is app-b's
			tis[k] = issue(id, "h-"+id, "jti-first")
			tis[k].JTI.Issuer = fmt.Sprintf("app-b-%d", k)
		}
	}
	var (
		mu   sync.Mutex
		i    int
		errs = map[string]error{}
	)
	race(n, func() error {
		mu.Lock()
		ti := tis[i]
		i++
		mu.Unlock()
		err := s.IssueToken(ctx, ti)
		mu.Lock()
		errs[ti.Token.GrantID] = err
		mu.Unlock()
		return err
	})
	wins := 1
	for k, ti := range tis {
		err := errs[ti.Token.GrantID]
		if k%3 == 0 {
			if !errors.Is(err, nv.ErrAlreadyExists) {
				t.Errorf("%s with a taken hash: %v, want ErrAlreadyExists", ti.Token.GrantID, err)
			}
			g, gerr := s.Grant(ctx, ti.Token.GrantID)
			if gerr != nil || g.CodeConsumed {
				t.Errorf("%s failed yet its code is redeemed: %+v %v", ti.Token.GrantID, g, gerr)
			}
			if err := s.ConsumeJTI(ctx, ti.JTI.Issuer, ti.JTI.ID, ti.JTI.ExpiresAt, ti.Now); err != nil {
				t.Errorf("%s failed yet its jti was consumed: %v", ti.Token.GrantID, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v, want nil", ti.Token.GrantID, err)
			continue
		}
		wins++
		if _, err := s.Token(ctx, ti.Token.Hash); err != nil {
			t.Errorf("%s succeeded but its token: %v", ti.Token.GrantID, err)
		}
	}
	usage(t, s, wins, "mixed batch")
}
