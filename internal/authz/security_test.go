package authz

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/numbergate/numbergate/internal/nv"
)

// requestObject is a valid signed request object of client c at now.
type requestObject struct {
	jwt.Claims
	ResponseType  string `json:"response_type,omitempty"`
	ClientID      string `json:"client_id,omitempty"`
	Scope         string `json:"scope,omitempty"`
	RedirectURI   string `json:"redirect_uri,omitempty"`
	State         string `json:"state,omitempty"`
	Nonce         string `json:"nonce,omitempty"`
	CodeChallenge string `json:"code_challenge,omitempty"`
	CCMethod      string `json:"code_challenge_method,omitempty"`
}

func (h *harness) requestObject(c testClient, mod func(*requestObject)) string {
	now := h.clock()
	_, ch := pkcePair()
	o := requestObject{
		Claims: jwt.Claims{Issuer: c.id, Audience: jwt.Audience{testIssuer + "/authorize"}, ID: rand.Text(),
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(300 * time.Second))},
		ResponseType: "code", ClientID: c.id, Scope: scopeAll, RedirectURI: testRedirect,
		Nonce: "n1", CodeChallenge: ch, CCMethod: "S256",
	}
	if mod != nil {
		mod(&o)
	}
	return c.sign(h.t, o)
}

// sendObject sends only client_id and request (RFC 9101).
func (h *harness) sendObject(c testClient, ro string) authzResult {
	return h.authorize(url.Values{"client_id": {c.id}, "request": {ro}})
}

// TestRequestObjectTimeBounds (issue 6 item 1): an object with iat a day
// ahead and exp = iat + 300 is refused; exp more than 300 s ahead is
// refused; a jti is refused on replay for as long as the object could be
// accepted (until exp plus the skew), and the object is refused after.
func TestRequestObjectTimeBounds(t *testing.T) {
	h := newHarness(t)
	c := h.client("app-a", nil)
	now := h.clock()
	for name, mod := range map[string]func(*requestObject){
		"iat a day ahead": func(o *requestObject) {
			o.IssuedAt = jwt.NewNumericDate(now.Add(24 * time.Hour))
			o.Expiry = jwt.NewNumericDate(now.Add(24*time.Hour + 300*time.Second))
		},
		"iat beyond the skew": func(o *requestObject) {
			o.IssuedAt = jwt.NewNumericDate(now.Add(DefaultClockSkew + 2*time.Second))
			o.Expiry = jwt.NewNumericDate(now.Add(200 * time.Second))
		},
		"exp 400 s ahead": func(o *requestObject) {
			o.IssuedAt = jwt.NewNumericDate(now.Add(200 * time.Second))
			o.Expiry = jwt.NewNumericDate(now.Add(400 * time.Second))
		},
		"exp - iat over 300 s": func(o *requestObject) {
			o.IssuedAt = jwt.NewNumericDate(now.Add(-100 * time.Second))
			o.Expiry = jwt.NewNumericDate(now.Add(201 * time.Second))
		},
		"no iat":  func(o *requestObject) { o.IssuedAt = nil },
		"expired": func(o *requestObject) { o.Expiry = jwt.NewNumericDate(now.Add(-DefaultClockSkew - time.Second)) },
	} {
		h.store.take()
		a := h.sendObject(c, h.requestObject(c, mod))
		if a.code != "" || a.err != "invalid_request_object" {
			t.Errorf("%s: code %q, error %q (%s)", name, a.code, a.err, a.desc)
		}
		if ops := h.store.take(); len(ops) != 0 {
			t.Errorf("%s: refused request wrote %v", name, ops)
		}
	}

	// Within the skew: iat 3 s ahead, exp iat+300 is accepted.
	ro := h.requestObject(c, func(o *requestObject) {
		o.IssuedAt = jwt.NewNumericDate(now.Add(3 * time.Second))
		o.Expiry = jwt.NewNumericDate(now.Add(303 * time.Second))
	})
	if a := h.sendObject(c, ro); a.code == "" {
		t.Fatalf("object within the clock skew refused: %q %s", a.err, a.desc)
	}
	// Replayed at any time until it expires (exp + skew = now + 308 s):
	// refused as a replay.
	for _, at := range []time.Duration{0, 200 * time.Second, 303*time.Second + DefaultClockSkew - time.Second} {
		h.advance(now.Add(at).Sub(h.clock()))
		a := h.sendObject(c, ro)
		if a.code != "" || !strings.Contains(a.desc, "jti was already used") {
			t.Fatalf("replay after %s: code %q, error %q (%s)", h.clock().Sub(now), a.code, a.err, a.desc)
		}
	}
	// Once exp plus the skew is reached the object itself is refused.
	h.advance(time.Second)
	if a := h.sendObject(c, ro); a.code != "" || !strings.Contains(a.desc, "expired") {
		t.Fatalf("replay after expiry: code %q, error %q (%s)", a.code, a.err, a.desc)
	}
}

// TestAssertionTimeBounds (issue 6 item 1): the same bounds on client
// assertions; a refused assertion consumes nothing.
func TestAssertionTimeBounds(t *testing.T) {
	h := newHarness(t)
	c := h.client("app-a", nil)
	now := h.clock()
	cases := map[string]struct {
		mod  func(*jwt.Claims)
		want string
	}{
		"iat a day ahead": {func(cl *jwt.Claims) {
			cl.IssuedAt = jwt.NewNumericDate(now.Add(24 * time.Hour))
			cl.Expiry = jwt.NewNumericDate(now.Add(24*time.Hour + 300*time.Second))
		}, "iat is in the future"},
		"exp 400 s ahead": {func(cl *jwt.Claims) { cl.IssuedAt = nil; cl.Expiry = jwt.NewNumericDate(now.Add(400 * time.Second)) }, "at most 300 seconds ahead"},
		"exp - iat over 300 s": {func(cl *jwt.Claims) {
			cl.IssuedAt = jwt.NewNumericDate(now.Add(-200 * time.Second))
			cl.Expiry = jwt.NewNumericDate(now.Add(150 * time.Second))
		}, "exp - iat"},
		"expired":           {func(cl *jwt.Claims) { cl.Expiry = jwt.NewNumericDate(now.Add(-time.Minute)) }, "expired"},
		"nbf in the future": {func(cl *jwt.Claims) { cl.NotBefore = jwt.NewNumericDate(now.Add(time.Minute)) }, "nbf"},
		"no exp":            {func(cl *jwt.Claims) { cl.Expiry = nil }, "must carry exp"},
	}
	for name, tc := range cases {
		code, verifier := h.code(c)
		h.store.take()
		tr := h.token(c, code, verifier, h.assertion(c, tc.mod))
		if tr.status != http.StatusUnauthorized || tr.Error != "invalid_client" || !strings.Contains(tr.Description, tc.want) {
			t.Errorf("%s: %d %s %q, want 401 invalid_client naming %q", name, tr.status, tr.Error, tr.Description, tc.want)
		}
		if ops := h.store.take(); len(ops) != 0 {
			t.Errorf("%s: refused assertion wrote %v", name, ops)
		}
		// The code is still good for a valid assertion.
		if tr := h.token(c, code, verifier, h.assertion(c, nil)); tr.status != http.StatusOK {
			t.Errorf("%s: code unusable after a refused assertion: %d %s", name, tr.status, tr.Description)
		}
	}

	// The jti of an accepted assertion is remembered until exp plus the
	// skew, at the store.
	a := h.assertion(c, func(cl *jwt.Claims) { cl.ID = "jti-kept"; cl.Expiry = jwt.NewNumericDate(now.Add(100 * time.Second)) })
	code, verifier := h.code(c)
	if tr := h.token(c, code, verifier, a); tr.status != http.StatusOK {
		t.Fatalf("token: %d %s", tr.status, tr.Description)
	}
	exp := now.Add(100 * time.Second).Truncate(time.Second)
	err := h.store.Store.ConsumeJTI(t.Context(), c.id, "jti-kept", exp.Add(time.Hour), exp.Add(DefaultClockSkew-time.Second))
	if !errors.Is(err, nv.ErrConsumed) {
		t.Errorf("jti forgotten before exp + skew: %v", err)
	}
}

// TestJTIPerClient (issue 6 item 2): one client using a jti first does not
// burn another client's assertion or request object with the same jti.
func TestJTIPerClient(t *testing.T) {
	h := newHarness(t)
	a := h.client("app-a", nil)
	b := h.client("app-b", nil)

	codeB, verB := h.code(b)
	if tr := h.token(b, codeB, verB, h.assertion(b, func(cl *jwt.Claims) { cl.ID = "shared-jti" })); tr.status != http.StatusOK {
		t.Fatalf("b: %d %s", tr.status, tr.Description)
	}
	codeA, verA := h.code(a)
	if tr := h.token(a, codeA, verA, h.assertion(a, func(cl *jwt.Claims) { cl.ID = "shared-jti" })); tr.status != http.StatusOK {
		t.Fatalf("a's assertion refused after b used the same jti: %d %s", tr.status, tr.Description)
	}
	// Each client's own replay is still refused.
	codeA, verA = h.code(a)
	if tr := h.token(a, codeA, verA, h.assertion(a, func(cl *jwt.Claims) { cl.ID = "shared-jti" })); tr.status != http.StatusUnauthorized ||
		!strings.Contains(tr.Description, "jti was already used") {
		t.Errorf("a's replay: %d %s", tr.status, tr.Description)
	}

	if r := h.sendObject(b, h.requestObject(b, func(o *requestObject) { o.ID = "shared-ro" })); r.code == "" {
		t.Fatalf("b's request object: %q %s", r.err, r.desc)
	}
	if r := h.sendObject(a, h.requestObject(a, func(o *requestObject) { o.ID = "shared-ro" })); r.code == "" {
		t.Errorf("a's request object refused after b used the same jti: %q %s", r.err, r.desc)
	}
}

// TestConcurrentRedemption (issue 6 item 3): 20 parallel redemptions of
// one code: at most one token is issued, and afterwards no issued token is
// stored (the losers revoked the grant, and a token is never stored for a
// revoked grant).
func TestConcurrentRedemption(t *testing.T) {
	h := newHarness(t)
	c := h.client("app-a", nil)
	for round := range 5 {
		code, verifier := h.code(c)
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			issued []string
			start  = make(chan struct{})
		)
		for range 20 {
			a := h.assertion(c, nil)
			wg.Go(func() {
				<-start
				tr := h.token(c, code, verifier, a)
				if tr.status == http.StatusOK {
					mu.Lock()
					issued = append(issued, tr.AccessToken)
					mu.Unlock()
				} else if tr.Error != "invalid_grant" {
					t.Errorf("loser: %d %s %s", tr.status, tr.Error, tr.Description)
				}
			})
		}
		close(start)
		wg.Wait()
		if len(issued) > 1 {
			t.Fatalf("round %d: %d tokens issued for one code", round, len(issued))
		}
		for _, tok := range issued {
			if _, err := h.store.Token(t.Context(), nv.HashToken(tok)); !errors.Is(err, nv.ErrNotFound) {
				t.Fatalf("round %d: the winner's token survived the losers' revocation: %v", round, err)
			}
		}
	}
}

// TestAuthorizeStoresOnlyTheGrant (issue 6 item 6, issue 7 item 2): a
// network-authenticated /authorize stores the grant and nothing else; a
// request that ends in an error or access_denied stores nothing.
func TestAuthorizeStoresOnlyTheGrant(t *testing.T) {
	h := newHarness(t)
	c := h.client("app-a", nil)
	_, ch := pkcePair()
	h.store.take()
	if a := h.authorize(authorizeParams(c, ch)); a.code == "" {
		t.Fatalf("no code: %q %s", a.err, a.desc)
	}
	if ops := h.store.take(); !slices.Equal(ops, []string{"CreateGrant"}) {
		t.Errorf("successful /authorize wrote %v, want only CreateGrant", ops)
	}

	refused := map[string]func(url.Values) string{
		"unknown device": func(q url.Values) string { return "access_denied" },
		"scope not onboarded": func(q url.Values) string {
			q.Set("scope", "openid "+nv.ScopeDevicePhoneNumber+" "+purpose)
			return "invalid_scope"
		},
		"state over the limit": func(q url.Values) string {
			q.Set("state", strings.Repeat("s", MaxStateLen+1))
			return "invalid_request"
		},
		"nonce over the limit": func(q url.Values) string {
			q.Set("nonce", strings.Repeat("n", MaxStateLen+1))
			return "invalid_request"
		},
		"login_hint over the limit": func(q url.Values) string {
			q.Set("login_hint", strings.Repeat("x", MaxParamLen+1))
			return "invalid_request"
		},
		"unknown parameter over the limit": func(q url.Values) string {
			q.Set("foo", strings.Repeat("x", MaxParamLen+1))
			return "invalid_request"
		},
		"repeated state": func(q url.Values) string { q.Add("state", "again"); return "invalid_request" },
	}
	for name, mod := range refused {
		q := authorizeParams(c, ch)
		want := mod(q)
		addr := knownDevice
		if name == "unknown device" {
			addr = "10.9.9.9:1"
		}
		a := h.authorizeRaw(q.Encode(), addr)
		if a.code != "" || a.err != want {
			t.Errorf("%s: code %q error %q (%s), want %s", name, a.code, a.err, a.desc, want)
		}
		if len(q.Get("state")) > MaxStateLen && a.state != "" {
			t.Errorf("%s: an oversize state was echoed", name)
		}
		if ops := h.store.take(); len(ops) != 0 {
			t.Errorf("%s: refused /authorize wrote %v", name, ops)
		}
	}
	// At the limit is fine.
	q := authorizeParams(c, ch)
	q.Set("state", strings.Repeat("s", MaxStateLen))
	q.Set("nonce", strings.Repeat("n", MaxStateLen))
	if a := h.authorize(q); a.code == "" || a.state != q.Get("state") {
		t.Errorf("state and nonce at the limit: %q %s", a.err, a.desc)
	}
}

// TestMalformedAuthorizeIs400 (issue 6 item 8): a malformed query or form
// body is a 400 page, never a 500; response modes other than query are
// refused, with the error delivered in query mode.
func TestMalformedAuthorizeIs400(t *testing.T) {
	h := newHarness(t)
	c := h.client("app-a", nil)
	_, ch := pkcePair()
	good := authorizeParams(c, ch).Encode()
	for _, raw := range []string{good + "&x=%zz", good + ";x=1", "%zz", "client_id=" + c.id + "&redirect_uri=%G0"} {
		a := h.authorizeRaw(raw, knownDevice)
		if a.status != http.StatusBadRequest || a.location != nil {
			t.Errorf("GET %q: %d (location %v), want a 400 page", raw, a.status, a.location)
		}
	}
	req := httptest.NewRequest(http.MethodPost, testIssuer+"/authorize", strings.NewReader(good+"&bad=%zz"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = knownDevice
	if rec := h.do(req); rec.Code != http.StatusBadRequest {
		t.Errorf("POST malformed body: %d", rec.Code)
	}

	for _, mode := range []string{"jwt", "query.jwt", "form_post.jwt", "fragment.jwt", "form_post", "json", "fragment", "bogus"} {
		q := authorizeParams(c, ch)
		q.Set("response_mode", mode)
		a := h.authorize(q)
		if a.location == nil || a.err != "invalid_request" || a.location.Fragment != "" || !strings.Contains(a.desc, "query") {
			t.Errorf("response_mode=%s: %d %v %q %q", mode, a.status, a.location, a.err, a.desc)
		}
	}
	q := authorizeParams(c, ch)
	q.Set("response_mode", "query")
	if a := h.authorize(q); a.code == "" {
		t.Errorf("response_mode=query refused: %q %s", a.err, a.desc)
	}
	if log := h.log.String(); strings.Contains(log, "level=ERROR") {
		t.Errorf("bad input logged an ERROR:\n%s", log)
	}

	rec := h.do(httptest.NewRequest(http.MethodGet, testIssuer+"/.well-known/openid-configuration", nil))
	if !strings.Contains(rec.Body.String(), `"response_modes_supported": [
    "query"
  ]`) {
		t.Errorf("discovery does not advertise query only:\n%s", rec.Body)
	}
}

// TestWithoutOpenID (issue 6 item 9): without openid the request is plain
// OAuth 2.0: a code, an access token, no ID token. Only a standard OIDC
// claim requested without openid is invalid_request.
func TestWithoutOpenID(t *testing.T) {
	h := newHarness(t)
	c := h.client("app-a", nil)
	verifier, ch := pkcePair()
	q := authorizeParams(c, ch)
	q.Set("scope", nv.ScopeVerify+" "+purpose)
	a := h.authorize(q)
	if a.code == "" {
		t.Fatalf("no code without openid: %q %s", a.err, a.desc)
	}
	tr := h.token(c, a.code, verifier, h.assertion(c, nil))
	if tr.status != http.StatusOK || tr.AccessToken == "" || tr.IDToken != "" {
		t.Fatalf("token without openid: %d %s, id_token %q", tr.status, tr.Description, tr.IDToken)
	}
	tok, err := h.store.Token(t.Context(), nv.HashToken(tr.AccessToken))
	if err != nil || !slices.Equal(tok.Scopes, []string{nv.ScopeVerify}) || tok.Purpose != purpose {
		t.Errorf("stored token %+v, %v", tok, err)
	}
	for _, extra := range []url.Values{{"scope": {nv.ScopeVerify + " profile " + purpose}}, {"claims": {`{"id_token":{"phone_number":null}}`}}} {
		q := authorizeParams(c, ch)
		q.Set("scope", nv.ScopeVerify+" "+purpose)
		for k, v := range extra {
			q[k] = v
		}
		if a := h.authorize(q); a.err != "invalid_request" || !strings.Contains(a.desc, "openid") {
			t.Errorf("%v without openid: %q %s", extra, a.err, a.desc)
		}
	}
	// With openid there is an ID token.
	code, verifier := h.code(c)
	if tr := h.token(c, code, verifier, h.assertion(c, nil)); tr.IDToken == "" {
		t.Errorf("no ID token with openid: %d %s", tr.status, tr.Description)
	}
}

// TestRequestObjectByValueOnly (issue 6 item 10): RFC 9101 clients send
// only client_id and request; plain parameters, when present, must equal
// the object's.
func TestRequestObjectByValueOnly(t *testing.T) {
	h := newHarness(t)
	c := h.client("app-a", nil)
	if a := h.sendObject(c, h.requestObject(c, nil)); a.code == "" {
		t.Fatalf("only client_id and request: %q %s", a.err, a.desc)
	}
	ro := h.requestObject(c, nil)
	q := url.Values{"client_id": {c.id}, "request": {ro}, "scope": {nv.ScopeVerify + " " + purpose}}
	if a := h.authorize(q); a.code != "" || a.err != "invalid_request_object" {
		t.Errorf("plain scope differing from the object's: code %q, %q %s", a.code, a.err, a.desc)
	}
	// An object whose redirect_uri is not registered is a page, never a redirect.
	bad := h.requestObject(c, func(o *requestObject) { o.RedirectURI = "https://evil.example/cb" })
	if a := h.sendObject(c, bad); a.location != nil || a.status != http.StatusBadRequest {
		t.Errorf("unregistered redirect_uri in the object: %d %v", a.status, a.location)
	}
	// An object signed by another client's key does not verify.
	other := h.client("app-b", nil)
	forged := other.sign(t, requestObject{Claims: jwt.Claims{Issuer: c.id, Audience: jwt.Audience{testIssuer}, ID: "x",
		IssuedAt: jwt.NewNumericDate(h.clock()), Expiry: jwt.NewNumericDate(h.clock().Add(time.Minute))},
		ResponseType: "code", ClientID: c.id, Scope: scopeAll, RedirectURI: testRedirect})
	if a := h.sendObject(c, forged); a.code != "" || a.err != "invalid_request_object" {
		t.Errorf("object signed with another client's key: code %q, %q %s", a.code, a.err, a.desc)
	}
}

// TestRedirectURIExact (issue 6 item 11): redirect_uri is compared as an
// exact string; a near miss is an error page and stores nothing.
func TestRedirectURIExact(t *testing.T) {
	h := newHarness(t)
	c := h.client("app-a", nil)
	_, ch := pkcePair()
	for _, uri := range []string{"HTTPS://app.example/cb", "https://APP.example/cb", "https://app.example/cb#", "https://app.example/cb/",
		"https://app.example/cb?", "https://app.example/cb?x=1", "https://app.example:443/cb", "https://app.example/%63b"} {
		q := authorizeParams(c, ch)
		q.Set("redirect_uri", uri)
		h.store.take()
		a := h.authorize(q)
		if a.location != nil || a.status != http.StatusBadRequest {
			t.Errorf("redirect_uri %q: %d, redirected to %v", uri, a.status, a.location)
		}
		if ops := h.store.take(); len(ops) != 0 {
			t.Errorf("redirect_uri %q wrote %v", uri, ops)
		}
	}
}

// TestAssertionAudExact (issue 6 item 11): aud is the token endpoint URL
// exactly or the issuer.
func TestAssertionAudExact(t *testing.T) {
	h := newHarness(t)
	c := h.client("app-a", nil)
	for _, aud := range []string{testIssuer + "/token?x=1", testIssuer + "?x=1", testIssuer + "/token/", testIssuer + "/", "HTTPS://nv.example/token", testIssuer + "/authorize"} {
		code, verifier := h.code(c)
		tr := h.token(c, code, verifier, h.assertion(c, func(cl *jwt.Claims) { cl.Audience = jwt.Audience{aud} }))
		if tr.status != http.StatusUnauthorized || !strings.Contains(tr.Description, testIssuer+"/token") {
			t.Errorf("aud %q: %d %s", aud, tr.status, tr.Description)
		}
	}
	for _, aud := range []string{testIssuer + "/token", testIssuer} {
		code, verifier := h.code(c)
		if tr := h.token(c, code, verifier, h.assertion(c, func(cl *jwt.Claims) { cl.Audience = jwt.Audience{aud} })); tr.status != http.StatusOK {
			t.Errorf("aud %q refused: %d %s", aud, tr.status, tr.Description)
		}
	}
}

// TestCodesStoredHashed (issue 6 item 11): the store holds the SHA-256 of
// the code, never the code.
func TestCodesStoredHashed(t *testing.T) {
	h := newHarness(t)
	c := h.client("app-a", nil)
	code, verifier := h.code(c)
	if _, err := h.store.GrantByAuthCode(t.Context(), code); !errors.Is(err, nv.ErrNotFound) {
		t.Errorf("the raw code finds a grant: %v", err)
	}
	sum := sha256.Sum256([]byte(code))
	g, err := h.store.GrantByAuthCode(t.Context(), hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatalf("the hashed code finds no grant: %v", err)
	}
	if strings.Contains(string(g.Data), code) {
		t.Errorf("the grant data holds the code")
	}
	if tr := h.token(c, code, verifier, h.assertion(c, nil)); tr.status != http.StatusOK {
		t.Errorf("token: %d %s", tr.status, tr.Description)
	}
	g, _ = h.store.Grant(t.Context(), g.ID)
	if strings.Contains(string(g.Data), code) {
		t.Errorf("the redeemed grant data holds the code")
	}
}

// TestTokenErrorsNameTheCheck (issue 9 item 3): each refusal at /token
// names the failed check, and is logged once with the client id, the
// endpoint and the reason, never the assertion.
func TestTokenErrorsNameTheCheck(t *testing.T) {
	h := newHarness(t)
	c := h.client("app-a", nil)
	other := h.client("app-b", nil)
	now := h.clock()
	type tcase struct {
		name   string
		form   func() (url.Values, string)
		status int
		code   string
		want   string
	}
	valid := func(mod func(*jwt.Claims), fm func(url.Values)) func() (url.Values, string) {
		return func() (url.Values, string) {
			code, verifier := h.code(c)
			f := tokenRequest(c, code, verifier, h.assertion(c, mod))
			if fm != nil {
				fm(f)
			}
			return f, "application/x-www-form-urlencoded"
		}
	}
	reused, reusedVerifier := h.code(c)
	if tr := h.token(c, reused, reusedVerifier, h.assertion(c, nil)); tr.status != 200 {
		t.Fatal(tr.Description)
	}
	usedJTI := h.assertion(c, func(cl *jwt.Claims) { cl.ID = "used" })
	code, verifier := h.code(c)
	if tr := h.token(c, code, verifier, usedJTI); tr.status != 200 {
		t.Fatal(tr.Description)
	}
	for _, tc := range []tcase{
		{"wrong aud", valid(func(cl *jwt.Claims) { cl.Audience = jwt.Audience{"https://other.example/token"} }, nil), 401, "invalid_client", testIssuer + "/token"},
		{"expired", valid(func(cl *jwt.Claims) { cl.Expiry = jwt.NewNumericDate(now.Add(-time.Hour)); cl.IssuedAt = nil }, nil), 401, "invalid_client", "expired"},
		{"future iat", valid(func(cl *jwt.Claims) { cl.IssuedAt = jwt.NewNumericDate(now.Add(time.Minute)) }, nil), 401, "invalid_client", "iat is in the future"},
		{"wrong iss", valid(func(cl *jwt.Claims) { cl.Issuer = "app-b" }, nil), 401, "invalid_client", "iss must equal client_id"},
		{"wrong sub", valid(func(cl *jwt.Claims) { cl.Subject = "someone" }, nil), 401, "invalid_client", "sub must equal"},
		{"wrong key", func() (url.Values, string) {
			code, verifier := h.code(c)
			cl := jwt.Claims{Issuer: c.id, Subject: c.id, Audience: jwt.Audience{testIssuer + "/token"}, ID: rand.Text(),
				IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}
			forged := testClient{id: c.id, key: other.key}
			forged.key.KeyID = c.key.KeyID
			return tokenRequest(c, code, verifier, forged.sign(t, cl)), "application/x-www-form-urlencoded"
		}, 401, "invalid_client", "signature does not verify"},
		{"replayed jti", func() (url.Values, string) {
			code, verifier := h.code(c)
			return tokenRequest(c, code, verifier, usedJTI), "application/x-www-form-urlencoded"
		}, 401, "invalid_client", "jti was already used"},
		{"client_id mismatch", valid(nil, func(f url.Values) { f.Set("client_id", "app-b") }), 401, "invalid_client", "iss must equal client_id"},
		{"no client_assertion_type", valid(nil, func(f url.Values) { f.Del("client_assertion_type") }), 401, "invalid_client", "client_assertion_type"},
		{"reused code", func() (url.Values, string) {
			return tokenRequest(c, reused, reusedVerifier, h.assertion(c, nil)), "application/x-www-form-urlencoded"
		}, 400, "invalid_grant", "already redeemed"},
		{"unknown code", valid(nil, func(f url.Values) { f.Set("code", "nope") }), 400, "invalid_grant", "unknown, expired or revoked"},
		{"foreign code", func() (url.Values, string) {
			code, verifier := h.code(other)
			return tokenRequest(c, code, verifier, h.assertion(c, nil)), "application/x-www-form-urlencoded"
		}, 400, "invalid_grant", "not issued to this client"},
		{"redirect_uri mismatch", valid(nil, func(f url.Values) { f.Set("redirect_uri", testRedirect+"/x") }), 400, "invalid_grant", "redirect_uri"},
		{"wrong verifier", valid(nil, func(f url.Values) { f.Set("code_verifier", strings.Repeat("a", 43)) }), 400, "invalid_grant", "code_verifier"},
		{"JSON body", func() (url.Values, string) { f, _ := valid(nil, nil)(); return f, "application/json" }, 400, "invalid_request", "application/x-www-form-urlencoded"},
		{"no Content-Type", func() (url.Values, string) { f, _ := valid(nil, nil)(); return f, "" }, 400, "invalid_request", "application/x-www-form-urlencoded"},
	} {
		form, ct := tc.form()
		before := strings.Count(h.log.String(), "oauth request refused")
		tr := h.tokenForm(form, ct)
		if tr.status != tc.status || tr.Error != tc.code || !strings.Contains(tr.Description, tc.want) {
			t.Errorf("%s: %d %s %q; want %d %s naming %q", tc.name, tr.status, tr.Error, tr.Description, tc.status, tc.code, tc.want)
		}
		log := h.log.String()
		if n := strings.Count(log, "oauth request refused") - before; n != 1 {
			t.Errorf("%s: %d refusal log lines, want 1", tc.name, n)
		}
		last := log[strings.LastIndex(log, "oauth request refused"):]
		if !strings.Contains(last, "endpoint=/token") || !strings.Contains(last, "reason=") || !strings.Contains(last, "client_id=") {
			t.Errorf("%s: refusal log line lacks endpoint, client_id or reason: %s", tc.name, last)
		}
		if a := form.Get("client_assertion"); a != "" && strings.Contains(log, a[:40]) {
			t.Errorf("%s: the assertion was logged", tc.name)
		}
	}
	_ = verifier
}

// TestAuthorizeMessages (issue 9 item 4): /authorize names the refused
// scope and checks code_challenge at once.
func TestAuthorizeMessages(t *testing.T) {
	h := newHarness(t)
	c := h.client("app-a", nil)
	_, ch := pkcePair()
	for scope, want := range map[string]string{
		"openid admin " + purpose:                             `"admin"`,
		"openid " + nv.ScopeDevicePhoneNumber + " " + purpose: nv.ScopeDevicePhoneNumber,
		"openid " + nv.ScopeVerify + " dpv:Marketing":         "dpv:Marketing",
		"openid " + nv.ScopeVerify:                            "exactly one purpose",
		"openid " + nv.ScopeVerify + " " + purpose + " dpv:X": "exactly one dpv: purpose",
	} {
		q := authorizeParams(c, ch)
		q.Set("scope", scope)
		if a := h.authorize(q); a.err != "invalid_scope" || !strings.Contains(a.desc, want) {
			t.Errorf("scope %q: %q %q, want invalid_scope naming %s", scope, a.err, a.desc, want)
		}
	}
	for name, mod := range map[string]func(url.Values){
		"challenge too short":  func(q url.Values) { q.Set("code_challenge", "abc") },
		"challenge too long":   func(q url.Values) { q.Set("code_challenge", strings.Repeat("a", 129)) },
		"challenge bad chars":  func(q url.Values) { q.Set("code_challenge", strings.Repeat("a", 42)+"+") },
		"method plain":         func(q url.Values) { q.Set("code_challenge_method", "plain") },
		"method without value": func(q url.Values) { q.Del("code_challenge") },
	} {
		q := authorizeParams(c, ch)
		mod(q)
		if a := h.authorize(q); a.err != "invalid_request" || !strings.Contains(a.desc, "code_challenge") {
			t.Errorf("%s: %q %q", name, a.err, a.desc)
		}
	}
	q := authorizeParams(c, strings.Repeat("A", 128))
	if a := h.authorize(q); a.code == "" {
		t.Errorf("a 128-character challenge refused: %q %s", a.err, a.desc)
	}
}

// TestRegistrationEndpointUnreachable (issue 10 item 1): client lookup goes
// through the engine's DCR manager (go-oidc v0.23.0 has no other store
// lookup), so registration must be unreachable: not routed, not advertised,
// and the manager refuses writes.
func TestRegistrationEndpointUnreachable(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/register", "/register/app-a", "/par", "/userinfo", "/introspect", "/revoke"} {
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
			req := httptest.NewRequest(m, testIssuer+path, strings.NewReader(`{"redirect_uris":["https://evil.example/cb"]}`))
			req.Header.Set("Content-Type", "application/json")
			if rec := h.do(req); rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %d", m, path, rec.Code)
			}
		}
	}
	rec := h.do(httptest.NewRequest(http.MethodGet, testIssuer+"/.well-known/openid-configuration", nil))
	if strings.Contains(rec.Body.String(), "registration_endpoint") {
		t.Error("discovery advertises registration_endpoint")
	}
	es := &engineStore{st: h.store}
	if es.SaveClient(t.Context(), nil) == nil || es.DeleteClient(t.Context(), "x") == nil {
		t.Error("the DCR manager accepts writes")
	}
	if _, err := h.store.Client(t.Context(), "app-a"); !errors.Is(err, nv.ErrNotFound) {
		t.Errorf("a client was registered: %v", err)
	}
}

// TestClientAddedAtRuntime: a client onboarded while the server runs is
// found at once (the lookup the DCR manager gives).
func TestClientAddedAtRuntime(t *testing.T) {
	h := newHarness(t)
	c := h.client(fmt.Sprintf("late-%d", time.Now().UnixNano()), nil)
	code, verifier := h.code(c)
	if tr := h.token(c, code, verifier, h.assertion(c, nil)); tr.status != http.StatusOK {
		t.Errorf("%d %s", tr.status, tr.Description)
	}
}

// TestRequestObjectNotNested: request and request_uri inside a request
// object are refused (RFC 9101 §4), and so are unsigned or symmetric
// objects and assertions.
func TestRequestObjectNotNested(t *testing.T) {
	h := newHarness(t)
	c := h.client("app-a", nil)
	type nested struct {
		requestObject
		Request    string `json:"request,omitempty"`
		RequestURI string `json:"request_uri,omitempty"`
	}
	base := func() requestObject {
		now := h.clock()
		return requestObject{Claims: jwt.Claims{Issuer: c.id, Audience: jwt.Audience{testIssuer}, ID: rand.Text(),
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))},
			ResponseType: "code", ClientID: c.id, Scope: scopeAll, RedirectURI: testRedirect}
	}
	for _, o := range []nested{
		{requestObject: base(), Request: h.requestObject(c, nil)},
		{requestObject: base(), RequestURI: "https://evil.example/ro"},
	} {
		if a := h.sendObject(c, c.sign(t, o)); a.code != "" || a.err != "invalid_request_object" || !strings.Contains(a.desc, "RFC 9101") {
			t.Errorf("nested %+v: code %q, %q %s", o.RequestURI, a.code, a.err, a.desc)
		}
	}
	// alg none: header {"alg":"none"}, empty signature.
	none := "eyJhbGciOiJub25lIn0." + strings.TrimRight(strings.Split(h.requestObject(c, nil), ".")[1], "=") + "."
	if a := h.sendObject(c, none); a.code != "" || (a.err != "invalid_request_object" && a.status != http.StatusBadRequest) {
		t.Errorf("alg none request object: %d code %q, %q", a.status, a.code, a.err)
	}
	q := url.Values{"client_id": {c.id}, "redirect_uri": {testRedirect}, "request": {none}}
	if a := h.authorize(q); a.code != "" || a.err != "invalid_request_object" {
		t.Errorf("alg none request object with a plain redirect_uri: code %q, %q", a.code, a.err)
	}
	code, verifier := h.code(c)
	noneAssertion := "eyJhbGciOiJub25lIn0." + strings.Split(h.assertion(c, nil), ".")[1] + "."
	if tr := h.token(c, code, verifier, noneAssertion); tr.status != http.StatusUnauthorized {
		t.Errorf("alg none assertion: %d %s", tr.status, tr.Description)
	}
}
