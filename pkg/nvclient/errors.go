package nvclient

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is every failure reported by the authorization server, the API or
// the callback. Use errors.As to read it.
type Error struct {
	// Op is the step that failed: "discovery", "authorize" (an error
	// redirected to the callback), "token", "verify",
	// "device-phone-number".
	Op string
	// Status is the HTTP status (0 for an error delivered on the redirect).
	Status int
	// Code is the CAMARA code (e.g. "INVALID_ARGUMENT", "UNAUTHENTICATED")
	// for API calls, the OAuth error (e.g. "access_denied",
	// "invalid_grant", "invalid_client") for the authorization server.
	Code string
	// Message is the CAMARA message or the OAuth error_description.
	Message string
	// Correlator is the x-correlator of the API call ("" elsewhere).
	Correlator string
	// RetryAfter is the server's Retry-After (429, 503), 0 when absent.
	RetryAfter time.Duration
}

// retryAfter reads a Retry-After header in seconds (RFC 9110 10.2.3; the
// HTTP-date form is read too).
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(min(n, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), 24*time.Hour)
	}
	return 0
}

func (e *Error) Error() string {
	s := "nvclient: " + e.Op + ": "
	if e.Status != 0 {
		s += fmt.Sprintf("%d ", e.Status)
	}
	s += e.Code
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Correlator != "" {
		s += " (x-correlator " + e.Correlator + ")"
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

// CodeOf returns the CAMARA or OAuth code of err, or "" when err is not an
// *Error.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// OAuth error codes an app meets (RFC 6749 4.1.2.1 and 5.2).
const (
	CodeAccessDenied         = "access_denied"
	CodeInvalidRequest       = "invalid_request"
	CodeInvalidScope         = "invalid_scope"
	CodeInvalidGrant         = "invalid_grant"
	CodeInvalidClient        = "invalid_client"
	CodeUnauthorizedClient   = "unauthorized_client"
	CodeUnsupportedGrantType = "unsupported_grant_type"
	CodeServerError          = "server_error"
)

// CAMARA error codes of the Number Verification API.
const (
	CodeInvalidArgument                 = "INVALID_ARGUMENT"
	CodeUnauthenticated                 = "UNAUTHENTICATED"
	CodePermissionDenied                = "PERMISSION_DENIED"
	CodeNotAuthenticatedByMobileNetwork = "NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK"
	CodeTooManyRequests                 = "TOO_MANY_REQUESTS"
	CodeQuotaExceeded                   = "QUOTA_EXCEEDED"
)

// Errors of the callback that are not the server's.
var (
	// ErrStateMismatch: the callback's state is not the one of the
	// pending authorization (a forged or stale redirect). Nothing was
	// exchanged.
	ErrStateMismatch = errors.New("nvclient: callback state does not match the pending authorization")
	// ErrNoCode: the callback carries neither a code nor an error.
	ErrNoCode = errors.New("nvclient: callback carries no code")
	// ErrIssuerMismatch: the callback's iss is not the client's issuer,
	// or is missing although the provider advertises it (RFC 9207 mix-up
	// defence). Nothing was exchanged.
	ErrIssuerMismatch = errors.New("nvclient: callback iss is not the issuer")
)
