package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/numbergate/numbergate/internal/api"
	"github.com/numbergate/numbergate/internal/nv"
)

// TestClientGone: a caller that disconnects before its token is spent (its
// request's context is cancelled) is not a server error: it is counted as
// CLIENT_CLOSED_REQUEST (status 499, nginx's convention), not 500
// INTERNAL, logged below ERROR, and its token is left unspent.
func TestClientGone(t *testing.T) {
	f := newFixture(t)
	tok := f.issue(t, nv.AuthNetwork, nv.ScopeVerify)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest(http.MethodPost, api.VerifyPath, strings.NewReader(`{"phoneNumber":"+123456789"}`)).WithContext(ctx)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, r)
	if rec.Code != api.StatusClientClosedRequest {
		t.Errorf("status %d, want %d", rec.Code, api.StatusClientClosedRequest)
	}
	f.mu.Lock()
	observed := strings.Join(f.observed, ",")
	f.mu.Unlock()
	if observed != api.OpVerify+" "+api.CodeClientClosedRequest {
		t.Errorf("observed %q, want %q", observed, api.OpVerify+" "+api.CodeClientClosedRequest)
	}
	if logs := f.logs.String(); strings.Contains(logs, `"level":"ERROR"`) || !strings.Contains(logs, api.CodeClientClosedRequest) {
		t.Errorf("logs: %s", logs)
	}
	// Nothing was spent: the same token answers a caller that stays.
	expect(t, f.do(verify(tok, `{"phoneNumber":"+123456789"}`)), http.StatusOK, `{"devicePhoneNumberVerified":true}`)
}
