package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/numbergate/numbergate/internal/nv"
)

// These tests drive /token over real HTTP (an httptest server in front of
// the routes) and check what the one combined write of a /token request
// (IssueToken) leaves in the store for each outcome.

// tokenHTTP posts a token request to the server at base.
func (h *harness) tokenHTTP(base string, form url.Values) tokenResult {
	h.t.Helper()
	resp, err := http.PostForm(base+TokenPath, form)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr tokenResult
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		h.t.Fatalf("token answer %d is not JSON: %v", resp.StatusCode, err)
	}
	tr.status = resp.StatusCode
	return tr
}

func (h *harness) httpServer() string {
	srv := httptest.NewServer(h.h)
	h.t.Cleanup(srv.Close)
	return srv.URL
}

// newHTTPHarness is a harness whose routes are served over HTTP at base,
// with one client, "app-a".
func newHTTPHarness(t *testing.T) (h *harness, base string, c testClient) {
	t.Helper()
	h = newHarness(t)
	return h, h.httpServer(), h.client("app-a", nil)
}

// usedAssertion is an assertion of c that has already won a token.
func (h *harness) usedAssertion(base string, c testClient) string {
	h.t.Helper()
	a := h.assertion(c, nil)
	code, verifier := h.code(c)
	if tr := h.tokenHTTP(base, tokenRequest(c, code, verifier, a)); tr.status != http.StatusOK {
		h.t.Fatalf("token: %d %s", tr.status, tr.Description)
	}
	return a
}

// usageRecords returns the token_issued records of client id.
func (h *harness) usageRecords(id string) []nv.UsageRecord {
	h.t.Helper()
	now := h.clock()
	recs, err := h.store.UsageRecords(h.t.Context(), now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		h.t.Fatal(err)
	}
	var out []nv.UsageRecord
	for _, r := range recs {
		if r.ClientID == id && r.Event == nv.UsageTokenIssued {
			out = append(out, r)
		}
	}
	return out
}

// grantOf returns the stored grant of code (nil if revoked or unknown).
func (h *harness) grantOf(code string) *nv.Grant {
	h.t.Helper()
	g, err := h.store.GrantByAuthCode(h.t.Context(), hashCode(code))
	if errors.Is(err, nv.ErrNotFound) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return &g
}

// TestTokenOneWrite: a successful /token is one store operation, which
// stores the jti, the redemption, the token and its usage record.
func TestTokenOneWrite(t *testing.T) {
	h, base, c := newHTTPHarness(t)
	code, verifier := h.code(c)
	a := h.assertion(c, nil)
	h.store.take()
	tr := h.tokenHTTP(base, tokenRequest(c, code, verifier, a))
	if tr.status != http.StatusOK {
		t.Fatalf("token: %d %s", tr.status, tr.Description)
	}
	if ops := h.store.take(); !slices.Equal(ops, []string{"IssueToken"}) {
		t.Errorf("/token: %v, want [IssueToken]", ops)
	}
	tok, err := h.store.Token(t.Context(), nv.HashToken(tr.AccessToken))
	if err != nil {
		t.Fatalf("the token is not stored: %v", err)
	}
	if g := h.grantOf(code); g == nil || !g.CodeConsumed {
		t.Errorf("the code is not redeemed: %+v", g)
	}
	want := []nv.UsageRecord{{At: h.clock().UTC(), ClientID: c.id, Event: nv.UsageTokenIssued, Operation: "token",
		Purpose: purpose, Scopes: tok.Scopes, Result: "OK", Source: "static"}}
	if got := h.usageRecords(c.id); len(got) != 1 || !got[0].At.Equal(want[0].At) ||
		fmt.Sprint(got[0].Scopes) != fmt.Sprint(want[0].Scopes) || got[0].Purpose != purpose || got[0].Source != "static" || got[0].Operation != "token" {
		t.Errorf("usage records %+v, want %+v", got, want)
	}
	code2, verifier2 := h.code(c)
	if tr := h.tokenHTTP(base, tokenRequest(c, code2, verifier2, a)); tr.status != http.StatusUnauthorized || tr.Description != jtiUsedDescription {
		t.Errorf("the assertion again: %d %s %s", tr.status, tr.Error, tr.Description)
	}
}

// TestFailedTokenConsumesAssertion (case a): a request that fails after
// the client authenticated, before its token was issued, still consumes
// the assertion's jti before it is answered.
func TestFailedTokenConsumesAssertion(t *testing.T) {
	h, base, c := newHTTPHarness(t)
	for _, tc := range []struct {
		name    string
		form    func(a string) url.Values
		ops     []string
		wantErr string
	}{
		{"unknown code", func(a string) url.Values {
			_, verifier := h.code(c)
			return tokenRequest(c, "no-such-code", verifier, a)
		}, []string{"ConsumeJTI"}, "invalid_grant"},
		{"wrong verifier", func(a string) url.Values {
			code, _ := h.code(c)
			return tokenRequest(c, code, strings.Repeat("a", 43), a)
		}, []string{"ConsumeJTI", "RevokeGrant"}, "invalid_grant"},
	} {
		a := h.assertion(c, nil)
		form := tc.form(a)
		h.store.take()
		if tr := h.tokenHTTP(base, form); tr.status != http.StatusBadRequest || tr.Error != tc.wantErr {
			t.Errorf("%s: %d %s %s", tc.name, tr.status, tr.Error, tr.Description)
		}
		if ops := h.store.take(); !slices.Equal(ops, tc.ops) {
			t.Errorf("%s: %v, want %v", tc.name, ops, tc.ops)
		}
		code, verifier := h.code(c)
		if tr := h.tokenHTTP(base, tokenRequest(c, code, verifier, a)); tr.status != http.StatusUnauthorized || tr.Description != jtiUsedDescription {
			t.Errorf("%s: the assertion reused: %d %s %s, want invalid_client (jti used)", tc.name, tr.status, tr.Error, tr.Description)
		}
		if g := h.grantOf(code); g == nil || g.CodeConsumed {
			t.Errorf("%s: the code sent with the reused assertion: %+v, want untouched", tc.name, g)
		}
	}
}

// TestReplayedAssertionBurnsNoCode (case b): a replayed assertion is
// invalid_client and changes nothing: the code it was sent with is neither
// redeemed nor revoked, whether the request was otherwise valid or not.
func TestReplayedAssertionBurnsNoCode(t *testing.T) {
	h, base, c := newHTTPHarness(t)
	used := h.usedAssertion(base, c)
	for _, tc := range []struct {
		name         string
		wrongVerifer bool
		ops          []string
	}{
		{"valid code", false, []string{"IssueToken"}},
		{"wrong verifier", true, []string{"ConsumeJTI"}},
	} {
		code, verifier := h.code(c)
		sent := verifier
		if tc.wrongVerifer {
			sent = strings.Repeat("a", 43)
		}
		h.store.take()
		if tr := h.tokenHTTP(base, tokenRequest(c, code, sent, used)); tr.status != http.StatusUnauthorized ||
			tr.Error != "invalid_client" || tr.Description != jtiUsedDescription {
			t.Errorf("%s: replay: %d %s %s", tc.name, tr.status, tr.Error, tr.Description)
		}
		if ops := h.store.take(); !slices.Equal(ops, tc.ops) {
			t.Errorf("%s: replay wrote %v, want %v (no revocation)", tc.name, ops, tc.ops)
		}
		if g := h.grantOf(code); g == nil || g.CodeConsumed {
			t.Fatalf("%s: the code after the replay: %+v, want neither redeemed nor revoked", tc.name, g)
		}
		if tr := h.tokenHTTP(base, tokenRequest(c, code, verifier, h.assertion(c, nil))); tr.status != http.StatusOK {
			t.Errorf("%s: the code with a fresh assertion: %d %s", tc.name, tr.status, tr.Description)
		}
	}
	if n := len(h.usageRecords(c.id)); n != 3 {
		t.Errorf("%d usage records, want 3 (one per token)", n)
	}
}

// TestLostRedemptionRace (case c): another node redeems the code between
// this request's checks and its write: invalid_grant, the grant revoked
// (RFC 6749 §4.1.2), the assertion consumed, no token and no usage record.
func TestLostRedemptionRace(t *testing.T) {
	h, base, c := newHTTPHarness(t)
	code, verifier := h.code(c)
	h.store.onIssue(func(ti nv.TokenIssue) error {
		return h.store.Store.RedeemGrant(context.Background(), ti.Token.GrantID, ti.GrantData, h.clock())
	})
	a := h.assertion(c, nil)
	h.store.take()
	tr := h.tokenHTTP(base, tokenRequest(c, code, verifier, a))
	if tr.status != http.StatusBadRequest || tr.Error != "invalid_grant" || !strings.Contains(tr.Description, "already redeemed") {
		t.Errorf("lost race: %d %s %s", tr.status, tr.Error, tr.Description)
	}
	if ops := h.store.take(); !slices.Equal(ops, []string{"IssueToken", "ConsumeJTI", "RevokeGrant"}) {
		t.Errorf("lost race wrote %v, want [IssueToken ConsumeJTI RevokeGrant]", ops)
	}
	if g := h.grantOf(code); g != nil {
		t.Errorf("the grant after a lost race: %+v, want revoked", g)
	}
	if n := len(h.usageRecords(c.id)); n != 0 {
		t.Errorf("%d usage records, want none", n)
	}
	h.store.onIssue(nil)
	code2, verifier2 := h.code(c)
	if tr := h.tokenHTTP(base, tokenRequest(c, code2, verifier2, a)); tr.status != http.StatusUnauthorized || tr.Description != jtiUsedDescription {
		t.Errorf("the assertion of the lost race again: %d %s %s", tr.status, tr.Error, tr.Description)
	}
}

// TestTokenStoreUnavailable (case d): the combined write fails as
// unavailable: temporarily_unavailable, and nothing changed, so the same
// code is redeemed once the store is back.
func TestTokenStoreUnavailable(t *testing.T) {
	h, base, c := newHTTPHarness(t)
	code, verifier := h.code(c)
	h.store.onIssue(func(nv.TokenIssue) error { return fmt.Errorf("%w: disk full", nv.ErrUnavailable) })
	h.store.take()
	tr := h.tokenHTTP(base, tokenRequest(c, code, verifier, h.assertion(c, nil)))
	if tr.status != http.StatusServiceUnavailable || tr.Error != "temporarily_unavailable" {
		t.Errorf("store unavailable: %d %s %s", tr.status, tr.Error, tr.Description)
	}
	if ops := h.store.take(); !slices.Equal(ops, []string{"IssueToken"}) {
		t.Errorf("store unavailable: wrote %v, want [IssueToken] alone", ops)
	}
	if g := h.grantOf(code); g == nil || g.CodeConsumed {
		t.Errorf("the grant after the outage: %+v, want untouched", g)
	}
	h.store.onIssue(nil)
	if tr := h.tokenHTTP(base, tokenRequest(c, code, verifier, h.assertion(c, nil))); tr.status != http.StatusOK {
		t.Errorf("the code once the store is back: %d %s %s", tr.status, tr.Error, tr.Description)
	}
}

// TestTokenWritesWithoutSlot (case e): outside serveToken (no slot in the
// context) the hooks write at once, one operation each, as before.
func TestTokenWritesWithoutSlot(t *testing.T) {
	h := newHarness(t)
	c := h.client("app-a", nil)
	code, _ := h.code(c)
	ctx := context.WithValue(t.Context(), assertionKey{}, assertionInfo{issuer: c.id, jti: "j-1", exp: h.clock().Add(time.Minute)})
	h.store.take()
	if err := h.srv.consumeAssertionJTI(ctx, "j-1"); err != nil {
		t.Fatal(err)
	}
	g, err := h.srv.es.GrantByAuthCode(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	g.AuthCodeConsumedAt = int(h.clock().Unix())
	if err := h.srv.es.SaveGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	tkn := &goidc.Token{ID: "opaque-1", GrantID: g.ID, ClientID: c.id, Scopes: g.Scopes,
		CreatedAt: int(h.clock().Unix()), ExpiresAt: int(h.clock().Add(time.Minute).Unix())}
	if err := h.srv.issueToken(ctx, tkn, g); err != nil {
		t.Fatal(err)
	}
	if ops := h.store.take(); !slices.Equal(ops, []string{"ConsumeJTI", "RedeemGrant", "SaveToken", "RecordUsage"}) {
		t.Errorf("without a slot: %v, want [ConsumeJTI RedeemGrant SaveToken RecordUsage]", ops)
	}
	if _, err := h.store.Token(t.Context(), nv.HashToken(tkn.ID)); err != nil {
		t.Errorf("the token: %v", err)
	}
	if n := len(h.usageRecords(c.id)); n != 1 {
		t.Errorf("%d usage records, want 1", n)
	}
}
