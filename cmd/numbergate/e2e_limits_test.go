package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// TestServeLimits: issue 6 item 7 end to end on the real serve path. The
// rate per device address at /authorize (excess redirected with
// error=temporarily_unavailable), the rate per client at /token (429, an
// OAuth body, Retry-After), a daily quota set with `clients add
// --quota-per-day` (429 QUOTA_EXCEEDED), and the metrics of what was
// limited.
func TestServeLimits(t *testing.T) {
	n := startServe(t, t.TempDir(), `network:
  static:
    - prefix: 127.0.0.21/32
      msisdn: "+34600000021"
limits:
  authorize_per_address: 3/h
  token_per_client: 2/h
  api_per_client: 1000/s
`) // per hour: on a slow machine no budget refills during the test
	p := onboard(t, n, "metered-app", "127.0.0.21")
	pub, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{p.key.Public()}})
	jwksPath := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksPath, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"clients", "add", "--replace", "--config", n.cfgPath, "--client-id", "metered-app",
		"--redirect-uri", p.redirect, "--jwks", jwksPath, "--scope", "openid number-verification:verify",
		"--purpose", "dpv:FraudPreventionAndDetection", "--require-pkce", "--quota-per-day", "1"}, os.Getenv, &out, &errb)
	if err != nil {
		t.Fatalf("clients add --quota-per-day: %v\n%s", err, errb.String())
	}

	// Authorizations 1 and 2, tokens 1 and 2.
	tok1 := p.flow(scopeVerify, "")
	tok2 := p.flow(scopeVerify, "")
	if r := p.verify(tok1.AccessToken, `{"phoneNumber":"+34600000021"}`); r.status != 200 || r.body["devicePhoneNumberVerified"] != true {
		t.Fatalf("first API call of the day: %d %v", r.status, r.body)
	}
	r := p.verify(tok2.AccessToken, `{"phoneNumber":"+34600000021"}`)
	if r.status != 429 || r.body["code"] != "QUOTA_EXCEEDED" {
		t.Errorf("second API call with a quota of 1 per day: %d %v", r.status, r.body)
	}

	// Authorization 3 is within 3/h; 4 is sent back to the client.
	verifier, challenge := pkce()
	pk := url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	a3 := p.authorize(pk)
	if a3.code == "" {
		t.Fatalf("third authorization: %d %s %s", a3.status, a3.err, a3.body)
	}
	a4 := p.authorize(pk)
	if a4.status != http.StatusSeeOther || a4.err != "temporarily_unavailable" || a4.code != "" || !strings.HasPrefix(a4.location, p.redirect+"?") ||
		!strings.Contains(a4.location, "iss="+url.QueryEscape(n.issuer)) {
		t.Errorf("fourth authorization from the same address: %d %q", a4.status, a4.location)
	}
	// Another address has its own budget (and is not a known device).
	other := *p
	other.device = deviceClient("127.0.0.22")
	if a := other.authorize(pk); a.err != "access_denied" {
		t.Errorf("other address: %d %q", a.status, a.err)
	}

	// Token 3 exceeds 2/h for this client.
	tr := p.token(a3.code, verifier, p.assertion(nil))
	if tr.status != 429 || tr.Error != "temporarily_unavailable" || !strings.Contains(tr.Description, "retry after") {
		t.Errorf("third token request: %d %q %q", tr.status, tr.Error, tr.Description)
	}

	resp, err := http.Get(n.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, w := range []string{
		`numbergate_limited_requests_total{reason="quota",route="api"} 1`,
		`numbergate_limited_requests_total{reason="rate",route="authorize"} 1`,
		`numbergate_limited_requests_total{reason="rate",route="token"} 1`,
	} {
		if !strings.Contains(string(metrics), w) {
			t.Errorf("metrics lack %s", w)
		}
	}
}

// TestSandboxHasNoLimits: the sandbox answers a burst beyond serve's
// default 10/s per address without limiting it.
func TestSandboxHasNoLimits(t *testing.T) {
	p := startSandbox(t, t.TempDir())
	_, challenge := pkce()
	for i := range 15 {
		a := p.authorize(url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "login_hint": {"tel:+34600000001"}})
		if a.code == "" {
			t.Fatalf("sandbox authorization %d: %d %q %s", i+1, a.status, a.err, a.body)
		}
	}
}

// TestServeTokenLimitIgnoresForgeries: requests that name a client at
// /token but fail its authentication (an assertion signed with another
// key) do not spend that client's budget: with token_per_client 1/h, the
// client's own request after three forgeries still gets its token.
func TestServeTokenLimitIgnoresForgeries(t *testing.T) {
	n := startServe(t, t.TempDir(), `network:
  static:
    - prefix: 127.0.0.23/32
      msisdn: "+34600000023"
limits:
  token_per_client: 1/h
`)
	p := onboard(t, n, "victim-app", "127.0.0.23")
	forger := *p
	forger.key = newTestKey(t)
	for i := range 3 {
		tr := forger.token("no-such-code", "", forger.assertion(nil))
		if tr.status != http.StatusUnauthorized || tr.Error != "invalid_client" {
			t.Fatalf("forged request %d: %d %q", i+1, tr.status, tr.Error)
		}
	}
	if tr := p.flow(scopeVerify, ""); tr.AccessToken == "" {
		t.Fatal("no token for the client after forgeries")
	}
	verifier, challenge := pkce()
	a := p.authorize(url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}})
	if tr := p.token(a.code, verifier, p.assertion(nil)); tr.status != http.StatusTooManyRequests {
		t.Errorf("second real token request within the hour: %d %q", tr.status, tr.Error)
	}
}
