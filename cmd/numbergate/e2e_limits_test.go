package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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

// TestServeRetryAfter: the Retry-After of serve's 429s is the time until
// the client's bucket has an event again, for limits per second, minute
// and hour, at the API (api_per_client 2/unit: period/2) and at /token
// (token_per_client 4/unit: period/4). The bucket starts refilling at the
// first call the test makes, so the header lies between ceil(period/N -
// elapsed) and ceil(period/N), elapsed measured from before that call to
// after the 429. A limit whose period passes before the test exceeds it
// (a very slow machine, per second) is logged, never failed.
func TestServeRetryAfter(t *testing.T) {
	for _, u := range []struct {
		unit   string
		period time.Duration
	}{{"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}} {
		t.Run("per "+u.unit, func(t *testing.T) {
			n := startServe(t, t.TempDir(), fmt.Sprintf(`network:
  static:
    - prefix: 127.0.0.24/32
      msisdn: "+34600000024"
limits:
  authorize_per_address: 1000/h
  token_per_client: 4/%s
  api_per_client: 2/%s
`, u.unit, u.unit))
			// exceed calls try up to max times; it returns the 429's
			// Retry-After and how long since before the first try, or ""
			// when every try was answered otherwise.
			exceed := func(max int, try func() (int, string)) (string, time.Duration) {
				t.Helper()
				t0 := time.Now()
				for range max {
					if status, retry := try(); status == http.StatusTooManyRequests {
						return retry, time.Since(t0)
					}
				}
				return "", time.Since(t0)
			}
			check := func(what string, perEvent time.Duration, retry string, elapsed time.Duration) {
				t.Helper()
				if retry == "" {
					if elapsed < perEvent {
						t.Errorf("%s: no 429 within %s, under the %s one event takes to refill", what, elapsed, perEvent)
					} else {
						t.Logf("%s: no 429 (the machine took %s, more than the %s one event takes to refill)", what, elapsed, perEvent)
					}
					return
				}
				got, err := strconv.Atoi(retry)
				hi := int(math.Ceil(perEvent.Seconds()))
				lo := max(1, int(math.Ceil((perEvent - elapsed).Seconds())))
				if err != nil || got < lo || got > hi {
					t.Errorf("%s: Retry-After %q after %s, want %d..%d s (one event per %s)", what, retry, elapsed, lo, hi, perEvent)
				} else {
					t.Logf("%s: Retry-After %s s after %s", what, retry, elapsed)
				}
			}

			// API: three tokens first (3 of /token's 4), then calls with
			// them back to back until one is refused.
			a := onboard(t, n, "retry-api-app", "127.0.0.24")
			var tokens []string
			for range 3 {
				tokens = append(tokens, a.flow(scopeVerify, "").AccessToken)
			}
			retry, elapsed := exceed(len(tokens), func() (int, string) {
				r := a.verify(tokens[0], `{"phoneNumber":"+34600000024"}`)
				tokens = tokens[1:]
				if r.status == 429 && r.body["code"] != "TOO_MANY_REQUESTS" {
					t.Errorf("API 429 with %v, want TOO_MANY_REQUESTS", r.body)
				}
				return r.status, r.retryAfter
			})
			check("API 2/"+u.unit, u.period/2, retry, elapsed)

			// /token: another client's requests (a valid assertion, a
			// code that does not exist: 400, counted) until one is refused.
			b := onboard(t, n, "retry-token-app", "127.0.0.24")
			retry, elapsed = exceed(8, func() (int, string) {
				tr := b.token("no-such-code", "", b.assertion(nil))
				if tr.status == 429 && tr.Error != "temporarily_unavailable" {
					t.Errorf("/token 429 with %q, want temporarily_unavailable", tr.Error)
				}
				return tr.status, tr.retryAfter
			})
			check("/token 4/"+u.unit, u.period/4, retry, elapsed)
		})
	}
}
