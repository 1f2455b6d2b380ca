package api

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/numbergate/numbergate/internal/nv"
)

func TestStatusTable(t *testing.T) {
	want := map[nv.Code]int{
		nv.CodeInvalidArgument:    400,
		nv.CodeUnauthenticated:    401,
		nv.CodePermissionDenied:   403,
		nv.CodeNotNetworkAuthn:    403,
		nv.CodeNotFound:           404,
		nv.CodeMethodNotAllowed:   405,
		nv.CodeUnsupportedMedia:   415,
		nv.CodeTooManyRequests:    429,
		nv.CodeQuotaExceeded:      429,
		nv.CodeInternal:           500,
		nv.CodeServiceUnavailable: 503,
	}
	if len(statusByCode) != len(want) {
		t.Errorf("table has %d codes, want %d", len(statusByCode), len(want))
	}
	for code, status := range want {
		got, ok := StatusFor(code)
		if !ok || got != status {
			t.Errorf("StatusFor(%s) = %d, %v; want %d", code, got, ok, status)
		}
	}
	if _, ok := StatusFor("INVALID_TOKEN_CONTEXT"); ok {
		t.Error("INVALID_TOKEN_CONTEXT must not be emitted (removed from Number Verification)")
	}
}

// TestErrorBodies is the golden file of every error body numbergate can send.
func TestErrorBodies(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		status   int
		body     string
		internal bool
	}{
		{"invalid argument", nv.Errorf(nv.CodeInvalidArgument, "Bad."), 400,
			`{"status":400,"code":"INVALID_ARGUMENT","message":"Bad."}`, false},
		{"unauthenticated", nv.Errorf(nv.CodeUnauthenticated, "No token."), 401,
			`{"status":401,"code":"UNAUTHENTICATED","message":"No token."}`, false},
		{"permission denied", nv.Errorf(nv.CodePermissionDenied, "No scope."), 403,
			`{"status":403,"code":"PERMISSION_DENIED","message":"No scope."}`, false},
		{"not network", nv.Errorf(nv.CodeNotNetworkAuthn, "Client must authenticate via the mobile network to use this service."), 403,
			`{"status":403,"code":"NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK","message":"Client must authenticate via the mobile network to use this service."}`, false},
		{"not found", nv.Errorf(nv.CodeNotFound, "Nothing."), 404,
			`{"status":404,"code":"NOT_FOUND","message":"Nothing."}`, false},
		{"method", nv.Errorf(nv.CodeMethodNotAllowed, "Use POST."), 405,
			`{"status":405,"code":"METHOD_NOT_ALLOWED","message":"Use POST."}`, false},
		{"media", nv.Errorf(nv.CodeUnsupportedMedia, "JSON only."), 415,
			`{"status":415,"code":"UNSUPPORTED_MEDIA_TYPE","message":"JSON only."}`, false},
		{"rate", nv.Errorf(nv.CodeTooManyRequests, "Rate limit reached."), 429,
			`{"status":429,"code":"TOO_MANY_REQUESTS","message":"Rate limit reached."}`, false},
		{"quota", nv.Errorf(nv.CodeQuotaExceeded, "Out of resource quota."), 429,
			`{"status":429,"code":"QUOTA_EXCEEDED","message":"Out of resource quota."}`, false},
		{"unavailable", nv.Errorf(nv.CodeServiceUnavailable, "Later."), 503,
			`{"status":503,"code":"UNAVAILABLE","message":"Later."}`, false},
		{"empty message", &nv.Error{Code: nv.CodeNotFound}, 404,
			`{"status":404,"code":"NOT_FOUND","message":"Not Found"}`, false},
		{"wrapped", fmt.Errorf("ctx: %w", nv.Errorf(nv.CodeInvalidArgument, "Bad.")), 400,
			`{"status":400,"code":"INVALID_ARGUMENT","message":"Bad."}`, false},
		{"internal code hides its message", nv.Errorf(nv.CodeInternal, "db path /var/lib/x"), 500,
			`{"status":500,"code":"INTERNAL","message":"Unknown server error. Typically a server bug."}`, true},
		{"unknown code", nv.Errorf("SOMETHING_NEW", "secret detail"), 500,
			`{"status":500,"code":"INTERNAL","message":"Unknown server error. Typically a server bug."}`, true},
		{"store unavailable", fmt.Errorf("consume token: sqlite: %w: database or disk is full (13)", nv.ErrUnavailable), 503,
			`{"status":503,"code":"UNAVAILABLE","message":"Service temporarily unavailable. Try again later."}`, true},
		{"plain error", errors.New("disk on fire +34600000001"), 500,
			`{"status":500,"code":"INTERNAL","message":"Unknown server error. Typically a server bug."}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, internal := ErrorInfoFor(tt.err); internal != tt.internal {
				t.Errorf("internal = %v, want %v", internal, tt.internal)
			}
			rec := httptest.NewRecorder()
			WriteError(rec, tt.err)
			if rec.Code != tt.status {
				t.Errorf("status = %d, want %d", rec.Code, tt.status)
			}
			if got := rec.Body.String(); got != tt.body {
				t.Errorf("body =\n %s\nwant\n %s", got, tt.body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q", cc)
			}
		})
	}
}
