package authz

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzAuthorizeQuery: whatever the query, /authorize never panics, never
// answers 500, and stores nothing unless it issued a code.
func FuzzAuthorizeQuery(f *testing.F) {
	f.Add("response_type=code&client_id=app-a&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=openid+number-verification%3Averify+dpv%3AFraudPreventionAndDetection&state=s")
	f.Add("client_id=app-a&request=eyJhbGciOiJFUzI1NiJ9.e30.sig")
	f.Add("%zz;&&==&client_id=app-a&client_id=app-b")
	f.Add("client_id=app-a&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_mode=form_post.jwt&code_challenge=%00")
	h := newHarness(f)
	h.client("app-a", nil)
	f.Fuzz(func(t *testing.T, raw string) {
		fuzzAuthorize(t, h, raw)
	})
}

func fuzzAuthorize(t *testing.T, h *harness, raw string) {
	h.store.take()
	req := httptest.NewRequest(http.MethodGet, testIssuer+"/authorize", nil)
	req.URL.RawQuery = raw
	req.RemoteAddr = knownDevice
	rec := h.do(req)
	if rec.Code >= 500 {
		t.Fatalf("query %q: %d %s", raw, rec.Code, rec.Body)
	}
	ops := h.store.take()
	code := ""
	if loc, err := url.Parse(rec.Header().Get("Location")); err == nil {
		code = loc.Query().Get("code")
	}
	if code == "" && len(ops) != 0 && !(len(ops) == 1 && ops[0] == "ConsumeJTI") {
		t.Fatalf("query %q: no code, but wrote %v", raw, ops)
	}
}

// FuzzTokenBody: whatever the body, /token never panics or answers 500,
// and always answers a JSON OAuth error or a token.
func FuzzTokenBody(f *testing.F) {
	f.Add("grant_type=authorization_code&code=x&client_id=app-a&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c", "application/x-www-form-urlencoded")
	f.Add("%zz", "application/x-www-form-urlencoded")
	f.Add(`{"grant_type":"authorization_code"}`, "application/json")
	f.Add("a=1&a=2", "application/x-www-form-urlencoded; charset=utf-8")
	h := newHarness(f)
	h.client("app-a", nil)
	f.Fuzz(func(t *testing.T, body, contentType string) {
		req := httptest.NewRequest(http.MethodPost, testIssuer+"/token", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		rec := h.do(req)
		if rec.Code >= 500 || !strings.Contains(rec.Body.String(), `"error"`) && rec.Code != 200 {
			t.Fatalf("body %q (%s): %d %s", body, contentType, rec.Code, rec.Body)
		}
	})
}
