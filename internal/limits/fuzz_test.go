package limits_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/limits"
)

// FuzzGuardInput feeds outside input (a query string, a form body, a
// Content-Type) to the guarded /authorize and /token of a limiter that is
// already spent, so every request goes through the guard's own parsing
// (client, redirect URI, request object, assertion). It must never panic
// or answer 5xx, and a redirect only ever goes to a registered URI.
func FuzzGuardInput(f *testing.F) {
	f.Add("client_id=app&redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Ftenant%3D1&state=s", "client_id=app", "application/x-www-form-urlencoded")
	f.Add("client_id=app&request=eyJhbGciOiJub25lIn0.eyJyZWRpcmVjdF91cmkiOiJjb20uZXhhbXBsZS5hcHA6L2NiIn0.", "client_assertion=a.eyJpc3MiOiJhcHAifQ.c", "application/x-www-form-urlencoded; charset=utf-8")
	f.Add("%zz;&&==", "%", "text/plain")
	f.Add("request=...&client_id=app", "client_assertion=....", "")
	fx := newFixture(f) // one store: the guard only reads it here
	f.Fuzz(func(t *testing.T, query, body, contentType string) {
		g := fx.guard(limits.Config{
			AuthorizePerAddress: limits.NewKeyed(1, time.Hour, 0),
			TokenPerClient:      limits.NewKeyed(1, time.Hour, 0),
		})
		authorize, token := fx.route(g, limits.RouteAuthorize), fx.route(g, limits.RouteToken)
		for i := range 2 {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				r := httptest.NewRequest(method, "/authorize", strings.NewReader(body))
				r.URL.RawQuery = query
				r.RemoteAddr = "198.51.100.1:1000"
				r.Header.Set("Content-Type", contentType)
				w := fx.serve(authorize, r)
				check(t, w, i)
			}
			r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
			r.Header.Set("Content-Type", contentType)
			check(t, fx.serve(token, r), i)
		}
	})
}

func check(t *testing.T, w *httptest.ResponseRecorder, round int) {
	t.Helper()
	if w.Code >= 500 {
		t.Fatalf("round %d: %d %s", round, w.Code, w.Body)
	}
	if loc := w.Header().Get("Location"); loc != "" &&
		!strings.HasPrefix(loc, "https://app.example/cb?tenant=1&") && !strings.HasPrefix(loc, "com.example.app:/cb?") {
		t.Fatalf("redirect to an unregistered URI: %q", loc)
	}
}
