package nvclient

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

// The client parses what it gets from outside: key files, /token answers,
// API answers. None may panic, and every refusal is a clear error.

func FuzzParseKey(f *testing.F) {
	f.Add([]byte(`{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}`))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIGEU0VNcJ3mK1BB2LMrIYHPiQzrXwbSSWBRtW6SFvvTb\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte(`{"kty":"oct","k":"AAAA"}`))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseKey(data)
		if err == nil && (k.signer == nil || k.kid == "" || k.alg == "") {
			t.Fatalf("accepted an incomplete key: %+v", k)
		}
	})
}

func FuzzTokenResponse(f *testing.F) {
	f.Add(200, []byte(`{"access_token":"abc","token_type":"Bearer","expires_in":300,"id_token":"x.y.z"}`))
	f.Add(400, []byte(`{"error":"invalid_grant","error_description":"the code was already used"}`))
	f.Add(401, []byte(`{"error":"invalid_client"}`))
	f.Add(502, []byte(`<html>bad gateway</html>`))
	f.Add(200, []byte(`{"expires_in":-1,"access_token":"a"}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		tr, err := parseTokenResponse(status, body)
		if err == nil {
			if status != 200 || tr.AccessToken == "" || tr.Error != "" || tr.ExpiresIn < 0 {
				t.Fatalf("accepted %d %q", status, body)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Op != "token" || e.Code == "" || e.Status != status {
			t.Fatalf("error %#v is not a typed token error", err)
		}
	})
}

func FuzzAPIResponse(f *testing.F) {
	f.Add(200, []byte(`{"devicePhoneNumberVerified":true}`))
	f.Add(401, []byte(`{"status":401,"code":"UNAUTHENTICATED","message":"Request not authenticated due to missing, invalid, or expired credentials."}`))
	f.Add(403, []byte(`{"status":403,"code":"NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK","message":"x"}`))
	f.Add(503, []byte(``))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		var out struct {
			Verified *bool `json:"devicePhoneNumberVerified"`
		}
		err := decodeAPIResponse("verify", status, "c-1", body, &out)
		if err == nil {
			if status != 200 {
				t.Fatalf("status %d accepted", status)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Op != "verify" || e.Status != status || e.Correlator != "c-1" {
			t.Fatalf("error %#v is not a typed API error", err)
		}
		if e.Code == "" {
			t.Fatalf("no code for %d %q", status, body)
		}
	})
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"7":                             7 * time.Second,
		"-3":                            0,
		"soon":                          0,
		"999999999":                     24 * time.Hour,
		"Mon, 30 Nov 2026 12:00:30 GMT": 30 * time.Second,
		"Mon, 30 Nov 2026 11:00:00 GMT": 0,
	} {
		if got := retryAfter(http.Header{"Retry-After": {v}}, now); got != want {
			t.Errorf("Retry-After %q = %s, want %s", v, got, want)
		}
	}
}
