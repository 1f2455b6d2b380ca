package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/api"
	"github.com/numbergate/numbergate/internal/nv"
)

const (
	phone = nv.PhoneNumber("+123456789")
	// phoneHash is SHA-256 of "+123456789" (the CAMARA test vector).
	phoneHash = "b49f9168e8a886ffd61a090b51a26e117717f5f6fa804af49ea67043a2bfa4f0"
	otherHash = "0000000000000000000000000000000000000000000000000000000000000000"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	store nv.TokenStore
	h     http.Handler
	now   time.Time
	logs  *bytes.Buffer

	mu       sync.Mutex
	observed []string
	n        int
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	return newFixtureOn(openStore(t))
}

// newFixtureOn builds the handler on store; a store that can keep usage
// records with the token's consumption (as serve's can) is given them.
func newFixtureOn(store nv.TokenStore) *fixture {
	f := &fixture{store: store, now: t0, logs: &bytes.Buffer{}}
	usage, _ := store.(nv.TokenUsageStore)
	f.h = api.NewHandler(f.store, api.Options{
		UsageStore: usage,
		Now:        func() time.Time { return f.now },
		Logger:     slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Observe: func(op, code string) {
			f.mu.Lock()
			f.observed = append(f.observed, op+" "+code)
			f.mu.Unlock()
		},
	})
	return f
}

// issue stores a fresh token valid for 300 s and returns its value.
func (f *fixture) issue(t testing.TB, method nv.AuthMethod, scopes ...string) string {
	t.Helper()
	f.n++
	value := fmt.Sprintf("tok-%d-%d", time.Now().UnixNano(), f.n)
	err := f.store.SaveToken(context.Background(), nv.AccessToken{
		Hash:       nv.HashToken(value),
		ClientID:   "client-1",
		MSISDN:     phone,
		Scopes:     append([]string{nv.ScopeOpenID}, scopes...),
		Purpose:    "dpv:FraudPreventionAndDetection",
		AuthMethod: method,
		Source:     "static",
		IssuedAt:   f.now,
		ExpiresAt:  f.now.Add(300 * time.Second),
	})
	if err != nil {
		t.Fatalf("SaveToken: %v", err)
	}
	return value
}

type call struct {
	method, path, token, body string
	header                    map[string]string
}

func (f *fixture) do(c call) *httptest.ResponseRecorder {
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	r := httptest.NewRequest(c.method, c.path, body)
	if c.method == http.MethodPost && c.body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		r.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range c.header {
		if v == "<delete>" {
			r.Header.Del(k)
			continue
		}
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, r)
	return rec
}

func verify(token, body string) call {
	return call{method: http.MethodPost, path: api.VerifyPath, token: token, body: body}
}

func share(token string) call {
	return call{method: http.MethodGet, path: api.DevicePhoneNumberPath, token: token}
}

// expect checks status, exact JSON body and the headers every response has.
func expect(t *testing.T, rec *httptest.ResponseRecorder, status int, body string) {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status = %d, want %d (body %s)", rec.Code, status, rec.Body)
	}
	if got := strings.TrimSpace(rec.Body.String()); got != body {
		t.Errorf("body =\n %s\nwant\n %s", got, body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q", cc)
	}
}

func errBody(status int, code nv.Code, message string) string {
	b, _ := json.Marshal(api.ErrorInfo{Status: status, Code: string(code), Message: message})
	return string(b)
}

const (
	msgUnknown  = "The access token is unknown or has been revoked. A new authentication is required."
	msgExpired  = "The access token has expired. A new authentication is required."
	msgUsed     = "The access token has already been used: Number Verification access tokens are single-use. A new authentication is required."
	msgNoHeader = "An Authorization header with a Bearer access token is required."
	msgNotNet   = "Client must authenticate via the mobile network to use this service."
)

func TestVerify(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		body string
		want bool
	}{
		{"plain match", `{"phoneNumber":"+123456789"}`, true},
		{"plain mismatch", `{"phoneNumber":"+123456780"}`, false},
		{"plain prefix is no match", `{"phoneNumber":"+12345678"}`, false},
		{"hash match", `{"hashedPhoneNumber":"` + phoneHash + `"}`, true},
		{"hash match upper case", `{"hashedPhoneNumber":"` + strings.ToUpper(phoneHash) + `"}`, true},
		{"hash mismatch", `{"hashedPhoneNumber":"` + otherHash + `"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, m := range []nv.AuthMethod{nv.AuthNetwork, nv.AuthSIM} {
				tok := f.issue(t, m, nv.ScopeVerify)
				rec := f.do(verify(tok, tt.body))
				expect(t, rec, 200, fmt.Sprintf(`{"devicePhoneNumberVerified":%v}`, tt.want))
			}
		})
	}
}

func TestDevicePhoneNumber(t *testing.T) {
	f := newFixture(t)
	tok := f.issue(t, nv.AuthNetwork, nv.ScopeDevicePhoneNumber)
	expect(t, f.do(share(tok)), 200, `{"devicePhoneNumber":"+123456789"}`)
	// single use
	expect(t, f.do(share(tok)), 401, errBody(401, nv.CodeUnauthenticated, msgUsed))
}

func TestTokenErrors(t *testing.T) {
	f := newFixture(t)
	body := `{"phoneNumber":"+123456789"}`

	t.Run("reuse", func(t *testing.T) {
		tok := f.issue(t, nv.AuthNetwork, nv.ScopeVerify)
		expect(t, f.do(verify(tok, body)), 200, `{"devicePhoneNumberVerified":true}`)
		rec := f.do(verify(tok, body))
		expect(t, rec, 401, errBody(401, nv.CodeUnauthenticated, msgUsed))
		if got := rec.Header().Get("WWW-Authenticate"); got != `Bearer realm="numbergate", error="invalid_token"` {
			t.Errorf("WWW-Authenticate = %q", got)
		}
	})
	t.Run("expired", func(t *testing.T) {
		tok := f.issue(t, nv.AuthNetwork, nv.ScopeVerify)
		f.now = t0.Add(301 * time.Second)
		defer func() { f.now = t0 }()
		expect(t, f.do(verify(tok, body)), 401, errBody(401, nv.CodeUnauthenticated, msgExpired))
	})
	t.Run("unknown", func(t *testing.T) {
		expect(t, f.do(verify("never-issued", body)), 401, errBody(401, nv.CodeUnauthenticated, msgUnknown))
	})
	t.Run("missing", func(t *testing.T) {
		rec := f.do(verify("", body))
		expect(t, rec, 401, errBody(401, nv.CodeUnauthenticated, msgNoHeader))
		if got := rec.Header().Get("WWW-Authenticate"); got != `Bearer realm="numbergate"` {
			t.Errorf("WWW-Authenticate = %q", got)
		}
	})
	t.Run("basic scheme", func(t *testing.T) {
		c := verify("", body)
		c.header = map[string]string{"Authorization": "Basic YTpi"}
		rec := f.do(c)
		if rec.Code != 401 || !strings.Contains(rec.Body.String(), "Bearer scheme") {
			t.Errorf("got %d %s", rec.Code, rec.Body)
		}
	})
	t.Run("wrong scope", func(t *testing.T) {
		tok := f.issue(t, nv.AuthNetwork, nv.ScopeDevicePhoneNumber)
		expect(t, f.do(verify(tok, body)), 403, errBody(403, nv.CodePermissionDenied,
			"Client does not have sufficient permissions to perform this action: the access token lacks scope number-verification:verify."))
		tok = f.issue(t, nv.AuthNetwork, nv.ScopeVerify)
		expect(t, f.do(share(tok)), 403, errBody(403, nv.CodePermissionDenied,
			"Client does not have sufficient permissions to perform this action: the access token lacks scope number-verification:device-phone-number:read."))
	})
	t.Run("not network", func(t *testing.T) {
		for _, m := range []nv.AuthMethod{nv.AuthOther, ""} {
			tok := f.issue(t, m, nv.ScopeVerify, nv.ScopeDevicePhoneNumber)
			expect(t, f.do(verify(tok, body)), 403, errBody(403, nv.CodeNotNetworkAuthn, msgNotNet))
			tok = f.issue(t, m, nv.ScopeVerify, nv.ScopeDevicePhoneNumber)
			expect(t, f.do(share(tok)), 403, errBody(403, nv.CodeNotNetworkAuthn, msgNotNet))
		}
	})
	t.Run("scope checked before auth method", func(t *testing.T) {
		tok := f.issue(t, nv.AuthOther)
		if rec := f.do(verify(tok, body)); !strings.Contains(rec.Body.String(), `"PERMISSION_DENIED"`) {
			t.Errorf("got %s", rec.Body)
		}
	})
}

// TestBadRequestKeepsToken: a request refused before step 5 must not spend
// the single-use token.
func TestBadRequestKeepsToken(t *testing.T) {
	f := newFixture(t)
	tok := f.issue(t, nv.AuthNetwork, nv.ScopeVerify)
	bad := []call{
		verify(tok, `{}`),
		verify(tok, `{"phoneNumber":"123"}`),
		verify(tok, `{"phoneNumber":"+123456789","hashedPhoneNumber":"`+phoneHash+`"}`),
		verify(tok, `{"phoneNumber":"+123456789"} {}`),
		{method: http.MethodPost, path: api.VerifyPath, token: tok},
		{method: http.MethodPost, path: api.VerifyPath, token: tok, body: `{"phoneNumber":"+123456789"}`, header: map[string]string{"Content-Type": "text/plain"}},
		{method: http.MethodPost, path: api.VerifyPath, token: tok, body: `{"phoneNumber":"+123456789"}`, header: map[string]string{"x-correlator": "bad value"}},
		{method: http.MethodGet, path: api.VerifyPath, token: tok},
		{method: http.MethodPost, path: api.BasePath + "/verify/", token: tok, body: `{"phoneNumber":"+123456789"}`},
	}
	for i, c := range bad {
		if rec := f.do(c); rec.Code < 400 || rec.Code >= 500 || rec.Code == 401 {
			t.Errorf("bad call %d: status %d %s", i, rec.Code, rec.Body)
		}
	}
	expect(t, f.do(verify(tok, `{"phoneNumber":"+123456789"}`)), 200, `{"devicePhoneNumberVerified":true}`)
}

// TestAuthenticateBeforeBody: without a usable Authorization header a bad
// body is 401, not 400.
func TestAuthenticateBeforeBody(t *testing.T) {
	f := newFixture(t)
	expect(t, f.do(verify("", `{}`)), 401, errBody(401, nv.CodeUnauthenticated, msgNoHeader))
}

func TestRouting(t *testing.T) {
	f := newFixture(t)
	tok := f.issue(t, nv.AuthNetwork, nv.ScopeVerify)
	tests := []struct {
		method, path string
		status       int
		code         nv.Code
		allow        string
	}{
		{http.MethodGet, api.VerifyPath, 405, nv.CodeMethodNotAllowed, "POST"},
		{http.MethodPut, api.VerifyPath, 405, nv.CodeMethodNotAllowed, "POST"},
		{http.MethodHead, api.VerifyPath, 405, nv.CodeMethodNotAllowed, "POST"},
		{http.MethodPost, api.DevicePhoneNumberPath, 405, nv.CodeMethodNotAllowed, "GET"},
		{http.MethodDelete, api.DevicePhoneNumberPath, 405, nv.CodeMethodNotAllowed, "GET"},
		{http.MethodGet, api.BasePath + "/", 404, nv.CodeNotFound, ""},
		{http.MethodGet, api.BasePath + "/nope", 404, nv.CodeNotFound, ""},
		{http.MethodPost, "/number-verification/v1/verify", 404, nv.CodeNotFound, ""},
		{http.MethodGet, api.DevicePhoneNumberPath + "/", 404, nv.CodeNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := f.do(call{method: tt.method, path: tt.path, token: tok, header: map[string]string{"x-correlator": "abc"}})
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d", rec.Code, tt.status)
			}
			if tt.method != http.MethodHead {
				var e api.ErrorInfo
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code != string(tt.code) || e.Status != tt.status || e.Message == "" {
					t.Errorf("body %s (%v)", rec.Body, err)
				}
			}
			if got := rec.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
			if got := rec.Header().Get("x-correlator"); got != "abc" {
				t.Errorf("x-correlator = %q", got)
			}
		})
	}
	// The token survived all of it.
	expect(t, f.do(verify(tok, `{"phoneNumber":"+123456789"}`)), 200, `{"devicePhoneNumberVerified":true}`)
}

func TestCorrelatorEcho(t *testing.T) {
	f := newFixture(t)
	body := `{"phoneNumber":"+123456789"}`
	t.Run("echoed on success", func(t *testing.T) {
		c := verify(f.issue(t, nv.AuthNetwork, nv.ScopeVerify), body)
		c.header = map[string]string{"x-correlator": "b4333c46-49c0-4f62-80d7-f0ef930f1c46"}
		if got := f.do(c).Header().Get("x-correlator"); got != "b4333c46-49c0-4f62-80d7-f0ef930f1c46" {
			t.Errorf("x-correlator = %q", got)
		}
	})
	t.Run("echoed on errors", func(t *testing.T) {
		for _, c := range []call{verify("", body), verify("unknown", body), verify(f.issue(t, nv.AuthNetwork, nv.ScopeVerify), "{}")} {
			c.header = map[string]string{"x-correlator": "corr-1"}
			if got := f.do(c).Header().Get("x-correlator"); got != "corr-1" {
				t.Errorf("x-correlator = %q", got)
			}
		}
	})
	t.Run("absent is not invented", func(t *testing.T) {
		rec := f.do(verify(f.issue(t, nv.AuthNetwork, nv.ScopeVerify), body))
		if _, ok := rec.Header()["X-Correlator"]; ok {
			t.Errorf("x-correlator invented: %q", rec.Header().Get("x-correlator"))
		}
	})
	t.Run("off pattern is 400 and not echoed", func(t *testing.T) {
		tok := f.issue(t, nv.AuthNetwork, nv.ScopeVerify)
		c := verify(tok, body)
		c.header = map[string]string{"x-correlator": "has space"}
		rec := f.do(c)
		expect(t, rec, 400, errBody(400, nv.CodeInvalidArgument, `The x-correlator header must match ^[a-zA-Z0-9-_:;.\/<>{}]{0,256}$.`))
		if _, ok := rec.Header()["X-Correlator"]; ok {
			t.Error("bad x-correlator echoed")
		}
		// Checked before authentication.
		c = verify("", body)
		c.header = map[string]string{"x-correlator": strings.Repeat("a", 257)}
		if rec := f.do(c); rec.Code != 400 {
			t.Errorf("status = %d", rec.Code)
		}
	})
}

// TestBodyErrorsThroughHandler runs a few malformed bodies end to end.
func TestBodyErrorsThroughHandler(t *testing.T) {
	f := newFixture(t)
	tok := f.issue(t, nv.AuthNetwork, nv.ScopeVerify)
	tests := []struct {
		body   string
		ct     string
		status int
		code   nv.Code
	}{
		{"", "application/json", 400, nv.CodeInvalidArgument},
		{`{}`, "application/json", 400, nv.CodeInvalidArgument},
		{`null`, "application/json", 400, nv.CodeInvalidArgument},
		{`{"phoneNumber":"+123456789","x":1}`, "application/json", 400, nv.CodeInvalidArgument},
		{`{"phoneNumber":"+123456789"}`, "text/plain", 415, nv.CodeUnsupportedMedia},
		{`{"phoneNumber":"+123456789"}` + strings.Repeat(" ", 5000), "application/json", 400, nv.CodeInvalidArgument},
	}
	for i, tt := range tests {
		c := call{method: http.MethodPost, path: api.VerifyPath, token: tok, body: tt.body, header: map[string]string{"Content-Type": tt.ct}}
		rec := f.do(c)
		var e api.ErrorInfo
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != tt.status || e.Status != tt.status || e.Code != string(tt.code) {
			t.Errorf("%d: %d %s", i, rec.Code, rec.Body)
		}
	}
}

type failingStore struct{ nv.TokenStore }

func (failingStore) ConsumeToken(context.Context, string, time.Time) (nv.AccessToken, error) {
	return nv.AccessToken{}, fmt.Errorf("database is locked at /secret/path")
}

func TestStoreFailureIs500(t *testing.T) {
	var logs bytes.Buffer
	h := api.NewHandler(failingStore{}, api.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, api.DevicePhoneNumberPath, nil)
	r.Header.Set("Authorization", "Bearer secret-token-value")
	h.ServeHTTP(rec, r)
	expect(t, rec, 500, `{"status":500,"code":"INTERNAL","message":"Unknown server error. Typically a server bug."}`)
	if !strings.Contains(logs.String(), "/secret/path") {
		t.Errorf("detail not logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), "secret-token-value") {
		t.Errorf("token logged: %s", logs.String())
	}
}

func TestNoSecretsInLogsAndObserve(t *testing.T) {
	f := newFixture(t)
	tok := f.issue(t, nv.AuthNetwork, nv.ScopeVerify, nv.ScopeDevicePhoneNumber)
	f.do(verify(tok, `{"phoneNumber":"+123456789"}`))
	f.do(verify(tok, `{"hashedPhoneNumber":"`+phoneHash+`"}`))
	tok2 := f.issue(t, nv.AuthNetwork, nv.ScopeDevicePhoneNumber)
	f.do(share(tok2))
	f.do(call{method: http.MethodGet, path: "/nope"})
	logs := f.logs.String()
	for _, secret := range []string{tok, tok2, "123456789", phoneHash, nv.HashToken(tok)} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q:\n%s", secret, logs)
		}
	}
	if !strings.Contains(logs, nv.HashToken(tok)[:8]) {
		t.Errorf("logs lack the token hash prefix:\n%s", logs)
	}
	want := []string{
		"phoneNumberVerify OK",
		"phoneNumberVerify UNAUTHENTICATED",
		"phoneNumberShare OK",
		"unknown NOT_FOUND",
	}
	if fmt.Sprint(f.observed) != fmt.Sprint(want) {
		t.Errorf("observed %q, want %q", f.observed, want)
	}
}

// TestConcurrentUse: of many simultaneous calls with one token, exactly one
// succeeds.
func TestConcurrentUse(t *testing.T) {
	f := newFixture(t)
	tok := f.issue(t, nv.AuthNetwork, nv.ScopeVerify)
	const n = 16
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- f.do(verify(tok, `{"phoneNumber":"+123456789"}`)).Code
		}()
	}
	wg.Wait()
	close(codes)
	ok := 0
	for c := range codes {
		switch c {
		case 200:
			ok++
		case 401:
		default:
			t.Errorf("status %d", c)
		}
	}
	if ok != 1 {
		t.Errorf("%d calls succeeded with one token, want 1", ok)
	}
}

func TestNilOptions(t *testing.T) {
	store := openStore(t)
	h := api.NewHandler(store, api.Options{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, api.DevicePhoneNumberPath, nil))
	if rec.Code != 401 {
		t.Errorf("status = %d", rec.Code)
	}
}
