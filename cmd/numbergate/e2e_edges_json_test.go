package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestSandboxEdgesJSON: unknown paths, a wrong method and a body without
// Content-Type: application/json all answer the CAMARA error body, fields
// in one order (status, code, message).
func TestSandboxEdgesJSON(t *testing.T) {
	p := startSandbox(t, t.TempDir())
	for _, c := range []struct {
		method, path, ctype, body string
		status                    int
		prefix                    string
	}{
		{"GET", "/nope", "", "", 404, `{"status":404,"code":"NOT_FOUND","message":`},
		{"GET", "/", "", "", 404, `{"status":404,"code":"NOT_FOUND","message":`},
		{"GET", "/number-verification/v1/verify", "", "", 404, `{"status":404,"code":"NOT_FOUND","message":`},
		{"POST", "/number-verification/v2/nope", "application/json", "{}", 404, `{"status":404,"code":"NOT_FOUND","message":`},
		{"GET", "/sandbox/tokens", "", "", 405, `{"status":405,"code":"METHOD_NOT_ALLOWED","message":`},
		{"POST", "/sandbox/tokens", "", `{"phoneNumber":"+34600000001"}`, 415, `{"status":415,"code":"UNSUPPORTED_MEDIA_TYPE","message":`},
		{"POST", "/sandbox/tokens", "text/plain", `{"phoneNumber":"+34600000001"}`, 415, `{"status":415,"code":"UNSUPPORTED_MEDIA_TYPE","message":`},
		{"POST", "/sandbox/tokens", "application/json", `{"phoneNumber":"34600000001"}`, 400, `{"status":400,"code":"INVALID_ARGUMENT","message":`},
		{"POST", "/number-verification/v2/verify", "application/json", `{}`, 401, `{"status":401,"code":"UNAUTHENTICATED","message":`},
	} {
		req, _ := http.NewRequest(c.method, p.issuer+c.path, strings.NewReader(c.body))
		if c.ctype != "" {
			req.Header.Set("Content-Type", c.ctype)
		}
		resp, err := p.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.HasPrefix(string(body), c.prefix) || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s (%q): %d %s %s; want %d %s...", c.method, c.path, c.ctype, resp.StatusCode, resp.Header.Get("Content-Type"), body, c.status, c.prefix)
		}
	}
	// The quick start's own command still works.
	req, _ := http.NewRequest("POST", p.issuer+"/sandbox/tokens", strings.NewReader(`{"phoneNumber": "+34600000001", "scope": "number-verification:verify"}`))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := p.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("minting with application/json; charset=utf-8: %d", resp.StatusCode)
	}
}
