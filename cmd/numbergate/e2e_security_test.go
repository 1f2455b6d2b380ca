package main

import (
	"net/url"
	"sync"
	"testing"
)

// TestSandboxParallelRedemption (issue 6 item 3): 20 parallel redemptions
// of one code; afterwards every token that was issued answers 401 at the
// API (the losers revoke the grant, and no token is ever stored for a
// revoked grant, whatever the interleaving).
func TestSandboxParallelRedemption(t *testing.T) {
	p := startSandbox(t, t.TempDir())
	for round := range 5 {
		verifier, challenge := pkce()
		ar := p.authorize(url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"},
			"login_hint": {"tel:" + devNumber}, "scope": {scopeVerify}})
		if ar.code == "" {
			t.Fatalf("authorize: %d %q %s", ar.status, ar.err, ar.errDesc)
		}
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			issued []string
			start  = make(chan struct{})
		)
		for range 20 {
			a := p.assertion(nil)
			wg.Go(func() {
				<-start
				tr := p.token(ar.code, verifier, a)
				switch {
				case tr.status == 200:
					mu.Lock()
					issued = append(issued, tr.AccessToken)
					mu.Unlock()
				case tr.Error != "invalid_grant":
					t.Errorf("round %d: a losing redemption got %d %s %s", round, tr.status, tr.Error, tr.Description)
				}
			})
		}
		close(start)
		wg.Wait()
		if len(issued) > 1 {
			t.Fatalf("round %d: %d tokens issued for one code", round, len(issued))
		}
		for _, tok := range issued {
			if r := p.verify(tok, `{"phoneNumber":"`+devNumber+`"}`); r.status != 401 {
				t.Fatalf("round %d: an issued token answered %d, want 401", round, r.status)
			}
		}
	}
}
