package limits_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/api"
	"github.com/numbergate/numbergate/internal/limits"
	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/sqlite"
)

const issuer = "https://nv.example.net"

type fixture struct {
	t       testing.TB
	st      *sqlite.Store
	now     time.Time
	mu      sync.Mutex
	limited map[string]int
	next    http.Handler // what the guarded route answers when let through
	reached int
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{t: t, st: st, now: time.Date(2026, 11, 30, 23, 59, 0, 0, time.UTC), limited: map[string]int{}}
	f.next = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	err = st.PutClient(context.Background(), nv.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb?tenant=1", "com.example.app:/cb"},
		Scopes: []string{nv.ScopeOpenID, nv.ScopeVerify}, Purposes: []string{"dpv:FraudPreventionAndDetection"}, CreatedAt: f.now})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) guard(cfg limits.Config) *limits.Guard {
	cfg.Clients, cfg.Tokens, cfg.Usage = f.st, f.st, f.st
	cfg.ClientAddr = func(r *http.Request) netip.AddrPort { return netip.MustParseAddrPort(r.RemoteAddr) }
	cfg.Issuer = issuer
	cfg.APIError = func(w http.ResponseWriter, err error) { api.WriteError(w, err) }
	cfg.OnLimited = func(route, reason string) {
		f.mu.Lock()
		f.limited[route+"/"+reason]++
		f.mu.Unlock()
	}
	cfg.Now = func() time.Time { return f.now }
	return limits.New(cfg)
}

func (f *fixture) serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func (f *fixture) route(g *limits.Guard, name string) http.Handler {
	return g.Wrap(name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.reached++
		f.next.ServeHTTP(w, r)
	}))
}

func authorizeReq(from, query string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/authorize?"+query, nil)
	r.RemoteAddr = from
	return r
}

// TestAuthorizeRateLimit: issue 6 item 7 at /authorize. Past the rate per
// device address, a request naming an onboarded client and one of its
// registered redirect URIs (plainly or in a request object) is sent back
// there with error=temporarily_unavailable, its state and iss; anything else
// gets a 429 page with Retry-After. IPv6 counts per /64.
func TestAuthorizeRateLimit(t *testing.T) {
	f := newFixture(t)
	h := f.route(f.guard(limits.Config{AuthorizePerAddress: limits.NewKeyed(1, time.Minute, 0)}), limits.RouteAuthorize)
	dev := "198.51.100.7:40000"
	good := url.Values{"client_id": {"app"}, "redirect_uri": {"https://app.example/cb?tenant=1"}, "state": {"s-1"}, "response_type": {"code"}}.Encode()
	if w := f.serve(h, authorizeReq(dev, good)); w.Code != http.StatusOK || f.reached != 1 {
		t.Fatalf("first request: %d, reached %d", w.Code, f.reached)
	}

	w := f.serve(h, authorizeReq("198.51.100.7:40001", good)) // same address, other port
	if w.Code != http.StatusSeeOther {
		t.Fatalf("limited request with a valid client and redirect: %d %s", w.Code, w.Body)
	}
	loc, _ := url.Parse(w.Header().Get("Location"))
	q := loc.Query()
	if loc.Scheme+"://"+loc.Host+loc.Path != "https://app.example/cb" || q.Get("tenant") != "1" || q.Get("error") != "temporarily_unavailable" ||
		q.Get("state") != "s-1" || q.Get("iss") != issuer || q.Get("code") != "" {
		t.Errorf("redirect %s", loc)
	}

	// The redirect URI and state of an (unverified) request object.
	claims, _ := json.Marshal(map[string]string{"client_id": "app", "redirect_uri": "com.example.app:/cb", "state": "s-2"})
	obj := "eyJhbGciOiJFUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(claims) + ".c2ln"
	w = f.serve(h, authorizeReq(dev, url.Values{"client_id": {"app"}, "request": {obj}}.Encode()))
	if loc := w.Header().Get("Location"); w.Code != http.StatusSeeOther || !strings.HasPrefix(loc, "com.example.app:/cb?") || !strings.Contains(loc, "state=s-2") {
		t.Errorf("request object: %d %q", w.Code, loc)
	}

	for name, query := range map[string]string{
		"unknown client":        url.Values{"client_id": {"nobody"}, "redirect_uri": {"https://app.example/cb?tenant=1"}}.Encode(),
		"unregistered redirect": url.Values{"client_id": {"app"}, "redirect_uri": {"https://evil.example/cb"}}.Encode(),
		"near-miss redirect":    url.Values{"client_id": {"app"}, "redirect_uri": {"https://app.example/cb?tenant=1#"}}.Encode(),
		"no redirect":           url.Values{"client_id": {"app"}}.Encode(),
		"object for another":    url.Values{"client_id": {"nobody"}, "request": {obj}}.Encode(),
		"malformed query":       "client_id=app&redirect_uri=%zz",
	} {
		w := f.serve(h, authorizeReq(dev, query))
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" || w.Header().Get("Location") != "" ||
			!strings.Contains(w.Body.String(), "Too many requests") {
			t.Errorf("%s: %d, Retry-After %q, Location %q", name, w.Code, w.Header().Get("Retry-After"), w.Header().Get("Location"))
		}
	}
	if f.reached != 1 {
		t.Errorf("limited requests reached the authorization server: %d", f.reached)
	}

	// Another address has its own budget; an IPv6 /64 is one address.
	if w := f.serve(h, authorizeReq("198.51.100.8:40000", good)); w.Code != http.StatusOK {
		t.Errorf("other address: %d", w.Code)
	}
	if w := f.serve(h, authorizeReq("[2001:db8:1:2::1]:5000", good)); w.Code != http.StatusOK {
		t.Errorf("first IPv6 request: %d", w.Code)
	}
	if w := f.serve(h, authorizeReq("[2001:db8:1:2:ffff::9]:5000", good)); w.Code != http.StatusSeeOther {
		t.Errorf("same /64: %d", w.Code)
	}
	if w := f.serve(h, authorizeReq("[2001:db8:1:3::1]:5000", good)); w.Code != http.StatusOK {
		t.Errorf("other /64: %d", w.Code)
	}
	f.now = f.now.Add(time.Minute)
	if w := f.serve(h, authorizeReq(dev, good)); w.Code != http.StatusOK {
		t.Errorf("after the refill: %d", w.Code)
	}
	if got := f.limited["authorize/rate"]; got != 9 {
		t.Errorf("limited authorize requests counted %d, want 9", got)
	}
}

func tokenReq(form url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = "192.0.2.1:1234"
	return r
}

// TestTokenRateLimit: issue 6 item 7 at /token. Past the rate per client,
// 429 with Retry-After and an OAuth error body. A request whose client
// authentication fails (401) does not spend the client's budget; unknown
// clients are left to the authorization server. The body reaches it intact.
func TestTokenRateLimit(t *testing.T) {
	f := newFixture(t)
	h := f.route(f.guard(limits.Config{TokenPerClient: limits.NewKeyed(1, time.Minute, 0)}), limits.RouteToken)
	var bodies []string
	status := http.StatusOK
	f.next = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
		w.WriteHeader(status)
	})
	claims, _ := json.Marshal(map[string]string{"iss": "app", "sub": "app"})
	byAssertion := url.Values{"grant_type": {"authorization_code"}, "code": {"c"}, "client_assertion": {"eyJhbGciOiJFUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(claims) + ".c2ln"}}

	// Forged requests naming the client fail authentication: given back.
	status = http.StatusUnauthorized
	for range 3 {
		if w := f.serve(h, tokenReq(byAssertion)); w.Code != http.StatusUnauthorized {
			t.Fatalf("forged request: %d", w.Code)
		}
	}
	status = http.StatusOK
	if w := f.serve(h, tokenReq(byAssertion)); w.Code != http.StatusOK {
		t.Fatalf("the client's own request after forged ones: %d", w.Code)
	}
	if bodies[3] != byAssertion.Encode() {
		t.Errorf("body reaching the authorization server: %q", bodies[3])
	}
	w := f.serve(h, tokenReq(url.Values{"client_id": {"app"}, "grant_type": {"authorization_code"}}))
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "60" || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("over the limit: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	var body struct{ Error, ErrorDescription string }
	if err := json.Unmarshal(w.Body.Bytes(), &struct {
		Error            *string `json:"error"`
		ErrorDescription *string `json:"error_description"`
	}{&body.Error, &body.ErrorDescription}); err != nil || body.Error != "temporarily_unavailable" || !strings.Contains(body.ErrorDescription, "retry after 60 s") {
		t.Errorf("OAuth error body %s (%v)", w.Body, err)
	}
	// Unknown clients and bodies that are not forms go through untouched.
	for range 2 {
		if w := f.serve(h, tokenReq(url.Values{"client_id": {"nobody"}})); w.Code != http.StatusOK {
			t.Errorf("unknown client: %d", w.Code)
		}
	}
	if got := f.limited["token/rate"]; got != 1 {
		t.Errorf("limited token requests counted %d, want 1", got)
	}
}

func apiReq(token, corr string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, api.VerifyPath, strings.NewReader(`{"phoneNumber":"+34600000001"}`))
	r.Header.Set("Authorization", "Bearer "+token)
	r.Header.Set("Content-Type", "application/json")
	if corr != "" {
		r.Header.Set("x-correlator", corr)
	}
	return r
}

func (f *fixture) saveToken(value, client string) {
	f.t.Helper()
	err := f.st.SaveToken(context.Background(), nv.AccessToken{Hash: nv.HashToken(value), ClientID: client, MSISDN: "+34600000001",
		Scopes: []string{nv.ScopeVerify}, AuthMethod: nv.AuthNetwork, IssuedAt: f.now, ExpiresAt: f.now.Add(5 * time.Minute)})
	if err != nil {
		f.t.Fatal(err)
	}
}

func camara(t *testing.T, w *httptest.ResponseRecorder) api.ErrorInfo {
	t.Helper()
	var e api.ErrorInfo
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("body %s: %v", w.Body, err)
	}
	return e
}

// TestAPIRateLimit: issue 6 item 7 at the API: past the rate per client
// (the client of the bearer token), 429 TOO_MANY_REQUESTS with Retry-After
// and the x-correlator echoed; unknown tokens are left to the API (401).
func TestAPIRateLimit(t *testing.T) {
	f := newFixture(t)
	h := f.route(f.guard(limits.Config{APIPerClient: limits.NewKeyed(2, time.Second, 0)}), limits.RouteAPI)
	for _, tok := range []string{"t1", "t2", "t3"} {
		f.saveToken(tok, "app")
	}
	for _, tok := range []string{"t1", "t2"} {
		if w := f.serve(h, apiReq(tok, "")); w.Code != http.StatusOK {
			t.Fatalf("call within the rate: %d", w.Code)
		}
	}
	w := f.serve(h, apiReq("t3", "corr-1"))
	e := camara(t, w)
	if w.Code != http.StatusTooManyRequests || e != (api.ErrorInfo{Status: 429, Code: "TOO_MANY_REQUESTS", Message: "Rate limit reached."}) ||
		w.Header().Get("Retry-After") != "1" || w.Header().Get("x-correlator") != "corr-1" {
		t.Errorf("over the rate: %d %+v Retry-After %q x-correlator %q", w.Code, e, w.Header().Get("Retry-After"), w.Header().Get("x-correlator"))
	}
	for range 3 {
		if w := f.serve(h, apiReq("unknown", "")); w.Code != http.StatusOK {
			t.Errorf("unknown token: %d (the API answers it)", w.Code)
		}
	}
	f.now = f.now.Add(time.Second)
	if w := f.serve(h, apiReq("t3", "")); w.Code != http.StatusOK {
		t.Errorf("after the refill: %d", w.Code)
	}
}

// TestAPIRefusedCallRecorded: a call refused by the per-client rate is
// recorded for usage with its token's client, purpose, scopes and source
// (the token is read whole for the record), whether the store named the
// client from memory (a live token it stored) or from the database.
func TestAPIRefusedCallRecorded(t *testing.T) {
	f := newFixture(t)
	var got []nv.UsageRecord
	h := f.route(f.guard(limits.Config{APIPerClient: limits.NewKeyed(1, time.Second, 0),
		Record: func(_ context.Context, r nv.UsageRecord) { got = append(got, r) }}), limits.RouteAPI)
	live := time.Now() // the store remembers a token until it expires by this clock
	for _, tok := range []string{"r1", "r2"} {
		err := f.st.SaveToken(context.Background(), nv.AccessToken{Hash: nv.HashToken(tok), ClientID: "app", MSISDN: "+34600000001",
			Scopes: []string{nv.ScopeVerify}, Purpose: "dpv:FraudPreventionAndDetection", AuthMethod: nv.AuthNetwork,
			Source: "radius", IssuedAt: live, ExpiresAt: live.Add(5 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
	}
	if w := f.serve(h, apiReq("r1", "")); w.Code != http.StatusOK {
		t.Fatalf("call within the rate: %d", w.Code)
	}
	if w := f.serve(h, apiReq("r2", "")); w.Code != http.StatusTooManyRequests {
		t.Fatalf("call over the rate: %d", w.Code)
	}
	want := nv.UsageRecord{At: f.now.UTC(), ClientID: "app", Event: nv.UsageAPICall, Operation: "phoneNumberVerify",
		Purpose: "dpv:FraudPreventionAndDetection", Scopes: []string{nv.ScopeVerify}, Result: "TOO_MANY_REQUESTS", Source: "radius"}
	if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("records = %+v, want one %+v", got, want)
	}
}

// TestAPIDailyQuota: issue 6 item 7. A client onboarded with a daily quota
// gets 429 QUOTA_EXCEEDED with Retry-After until the next UTC midnight once
// it has made that many calls in the UTC day; the count is in the store, so
// a second node (another guard on the same store) sees it too; the next
// UTC day starts again. Clients without a quota are not counted.
func TestAPIDailyQuota(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c, _ := f.st.Client(ctx, "app")
	c.QuotaPerDay = 2
	if err := f.st.PutClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	node1 := f.route(f.guard(limits.Config{}), limits.RouteAPI)
	node2 := f.route(f.guard(limits.Config{}), limits.RouteAPI)
	for i, tok := range []string{"a", "b", "c", "d"} {
		f.saveToken(tok, "app")
		_ = i
	}
	if w := f.serve(node1, apiReq("a", "")); w.Code != http.StatusOK {
		t.Fatalf("1st call: %d", w.Code)
	}
	if w := f.serve(node2, apiReq("b", "")); w.Code != http.StatusOK {
		t.Fatalf("2nd call (other node): %d", w.Code)
	}
	w := f.serve(node1, apiReq("c", ""))
	e := camara(t, w)
	if w.Code != http.StatusTooManyRequests || e != (api.ErrorInfo{Status: 429, Code: "QUOTA_EXCEEDED", Message: "Out of resource quota."}) ||
		w.Header().Get("Retry-After") != "60" { // f.now is 23:59 UTC
		t.Errorf("3rd call: %d %+v Retry-After %q", w.Code, e, w.Header().Get("Retry-After"))
	}
	if w := f.serve(node2, apiReq("c", "")); w.Code != http.StatusTooManyRequests {
		t.Errorf("3rd call on the other node: %d", w.Code)
	}
	if f.reached != 2 {
		t.Errorf("%d calls reached the API, want 2", f.reached)
	}
	// The token refused by the quota was not spent.
	if tok, err := f.st.Token(ctx, nv.HashToken("c")); err != nil {
		t.Errorf("token after a quota refusal: %+v %v", tok, err)
	}
	f.now = f.now.Add(time.Minute) // 00:00 UTC, a new day
	if w := f.serve(node1, apiReq("c", "")); w.Code != http.StatusOK {
		t.Errorf("first call of the next UTC day: %d", w.Code)
	}
	if got := f.limited["api/quota"]; got != 2 {
		t.Errorf("quota refusals counted %d, want 2", got)
	}

	// A client without a quota is not counted at all.
	if err := f.st.PutClient(ctx, nv.Client{ID: "free", CreatedAt: f.now}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		tok := "free-" + string(rune('a'+i))
		f.saveToken(tok, "free")
		if w := f.serve(node1, apiReq(tok, "")); w.Code != http.StatusOK {
			t.Errorf("client without quota, call %d: %d", i+1, w.Code)
		}
	}
	if ok, err := f.st.TakeDailyQuota(ctx, "free", f.now, 1); err != nil || !ok {
		t.Errorf("calls of a client without quota were counted: %v %v", ok, err)
	}
}
