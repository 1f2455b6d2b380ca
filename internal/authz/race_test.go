package authz

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/numbergate/numbergate/internal/nv"
)

// These tests race /token requests over real HTTP that share an
// authorization code, a client assertion, or both, and check the
// single-use properties of the one combined write (IssueToken).

// raceTokens sends every form at once and returns the answers in order.
func (h *harness) raceTokens(base string, forms []map[string][]string) []tokenResult {
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		out   = make([]tokenResult, len(forms))
	)
	for i, f := range forms {
		wg.Go(func() {
			<-start
			out[i] = h.tokenHTTP(base, f)
		})
	}
	close(start)
	wg.Wait()
	return out
}

// TestRaceSameAssertionSameCode: one assertion and one code sent in
// parallel: one token, every other request invalid_client (a replayed
// assertion), and the winner's token survives (a replay revokes nothing).
func TestRaceSameAssertionSameCode(t *testing.T) {
	h, base, c := newHTTPHarness(t)
	for round := range 3 {
		code, verifier := h.code(c)
		a := h.assertion(c, nil)
		forms := make([]map[string][]string, 16)
		for i := range forms {
			forms[i] = tokenRequest(c, code, verifier, a)
		}
		var ok []string
		for _, tr := range h.raceTokens(base, forms) {
			switch {
			case tr.status == http.StatusOK:
				ok = append(ok, tr.AccessToken)
			case tr.status != http.StatusUnauthorized || tr.Error != "invalid_client" || tr.Description != jtiUsedDescription:
				t.Errorf("round %d: loser: %d %s %s", round, tr.status, tr.Error, tr.Description)
			}
		}
		if len(ok) != 1 {
			t.Fatalf("round %d: %d tokens, want exactly 1", round, len(ok))
		}
		if _, err := h.store.Token(t.Context(), nv.HashToken(ok[0])); err != nil {
			t.Errorf("round %d: the winner's token was revoked by a replay of its own assertion: %v", round, err)
		}
	}
}

// TestRaceSameAssertionManyCodes: one assertion sent with several codes
// in parallel: one token; the other codes are neither redeemed nor revoked
// and redeem with a fresh assertion.
func TestRaceSameAssertionManyCodes(t *testing.T) {
	h, base, c := newHTTPHarness(t)
	a := h.assertion(c, nil)
	type cv struct{ code, verifier string }
	var codes []cv
	forms := make([]map[string][]string, 8)
	for i := range forms {
		code, verifier := h.code(c)
		codes = append(codes, cv{code, verifier})
		forms[i] = tokenRequest(c, code, verifier, a)
	}
	won := -1
	for i, tr := range h.raceTokens(base, forms) {
		switch {
		case tr.status == http.StatusOK:
			if won >= 0 {
				t.Fatalf("two tokens for one assertion (codes %d and %d)", won, i)
			}
			won = i
		case tr.status != http.StatusUnauthorized || tr.Error != "invalid_client":
			t.Errorf("loser %d: %d %s %s", i, tr.status, tr.Error, tr.Description)
		}
	}
	if won < 0 {
		t.Fatal("no token")
	}
	for i, x := range codes {
		if i == won {
			continue
		}
		if g := h.grantOf(x.code); g == nil || g.CodeConsumed {
			t.Errorf("code %d after losing with a replayed assertion: %+v, want untouched", i, g)
			continue
		}
		if tr := h.tokenHTTP(base, tokenRequest(c, x.code, x.verifier, h.assertion(c, nil))); tr.status != http.StatusOK {
			t.Errorf("code %d with a fresh assertion: %d %s %s", i, tr.status, tr.Error, tr.Description)
		}
	}
}

// TestRaceReplaysAgainstFreshAssertion: replays of a used assertion sent
// with a code at the same time as its rightful request: the rightful one
// gets the token and keeps it.
func TestRaceReplaysAgainstFreshAssertion(t *testing.T) {
	h, base, c := newHTTPHarness(t)
	used := h.usedAssertion(base, c)
	for round := range 3 {
		code, verifier := h.code(c)
		forms := make([]map[string][]string, 12)
		for i := range forms {
			forms[i] = tokenRequest(c, code, verifier, used)
		}
		forms[len(forms)/2] = tokenRequest(c, code, verifier, h.assertion(c, nil))
		res := h.raceTokens(base, forms)
		for i, tr := range res {
			if i == len(forms)/2 {
				if tr.status != http.StatusOK {
					t.Errorf("round %d: rightful request: %d %s %s", round, tr.status, tr.Error, tr.Description)
				} else if _, err := h.store.Token(t.Context(), nv.HashToken(tr.AccessToken)); err != nil {
					t.Errorf("round %d: the rightful token was revoked by a replay: %v", round, err)
				}
				continue
			}
			if tr.status != http.StatusUnauthorized || tr.Error != "invalid_client" {
				t.Errorf("round %d: replay: %d %s %s", round, tr.status, tr.Error, tr.Description)
			}
		}
	}
}

// TestTokenClientGone: a /token whose caller disconnected (its context
// ended) before anything was stored is not a server error: answered 499
// client_closed_request (to no one), logged below ERROR, and nothing is
// changed: the code and the assertion both still work.
func TestTokenClientGone(t *testing.T) {
	h := newHarness(t)
	c := h.client("app-a", nil)
	code, verifier := h.code(c)
	a := h.assertion(c, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest(http.MethodPost, testIssuer+"/token", strings.NewReader(tokenRequest(c, code, verifier, a).Encode())).WithContext(ctx)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = "192.0.2.10:50000"
	rec := h.do(req)
	if rec.Code != statusClientClosedRequest {
		t.Errorf("client gone: %d %s, want %d", rec.Code, rec.Body, statusClientClosedRequest)
	}
	if logs := h.log.String(); strings.Contains(logs, "level=ERROR") {
		t.Errorf("client gone logged at ERROR:\n%s", logs)
	}
	if g := h.grantOf(code); g == nil || g.CodeConsumed {
		t.Fatalf("the code after the client went away: %+v, want untouched", g)
	}
	if tr := h.token(c, code, verifier, a); tr.status != http.StatusOK {
		t.Errorf("the same code and assertion afterwards: %d %s %s", tr.status, tr.Error, tr.Description)
	}
}

// TestAuthorizeClientGone: an /authorize whose caller disconnected is not
// logged at ERROR.
func TestAuthorizeClientGone(t *testing.T) {
	h := newHarness(t)
	c := h.client("app-a", nil)
	_, ch := pkcePair()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest(http.MethodGet, testIssuer+"/authorize?"+authorizeParams(c, ch).Encode(), nil).WithContext(ctx)
	req.RemoteAddr = knownDevice
	h.do(req)
	if logs := h.log.String(); strings.Contains(logs, "level=ERROR") {
		t.Errorf("client gone logged at ERROR:\n%s", logs)
	}
}

// TestUnavailableBeforeRevocation: a /token that fails its checks (a wrong
// PKCE verifier) while the store is unavailable for the assertion's jti,
// which must be consumed before the grant is revoked: 503
// temporarily_unavailable, and nothing is half done (the grant is not
// revoked, the jti is free), so the request can be sent again.
func TestUnavailableBeforeRevocation(t *testing.T) {
	h, base, c := newHTTPHarness(t)
	code, verifier := h.code(c)
	a := h.assertion(c, nil)
	h.store.failConsume(fmt.Errorf("%w: disk full", nv.ErrUnavailable))
	tr := h.tokenHTTP(base, tokenRequest(c, code, strings.Repeat("a", 43), a))
	if tr.status != http.StatusServiceUnavailable || tr.Error != "temporarily_unavailable" {
		t.Errorf("unavailable at the jti: %d %s %s", tr.status, tr.Error, tr.Description)
	}
	h.store.failConsume(nil)
	if g := h.grantOf(code); g == nil || g.CodeConsumed {
		t.Fatalf("the grant after the outage: %+v, want untouched", g)
	}
	if tr := h.tokenHTTP(base, tokenRequest(c, code, verifier, a)); tr.status != http.StatusOK {
		t.Errorf("the same code and assertion once the store is back: %d %s %s", tr.status, tr.Error, tr.Description)
	}
}
