package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/numbergate/numbergate/internal/sandboxtest"
)

// TestSandboxtestMatchesSandbox: internal/sandboxtest (the in-process
// sandbox of pkg/nvclient's and the demo app's tests) serves what
// `numbergate sandbox` serves: the same discovery document (but for the
// issuer), the same routes, the same answers to the same mistakes.
func TestSandboxtestMatchesSandbox(t *testing.T) {
	binary := startSandbox(t, t.TempDir())
	inproc := sandboxtest.Start(t)
	fetch := func(issuer, method, path, body string) string {
		t.Helper()
		req, _ := http.NewRequest(method, issuer+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Status + " " + resp.Header.Get("Content-Type") + "\n" + strings.ReplaceAll(string(b), issuer, "ISSUER")
	}
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/.well-known/openid-configuration", ""},
		{"GET", "/openapi.yaml", ""},
		{"GET", "/no-such-path", ""},
		{"POST", "/number-verification/v2/verify", `{"phoneNumber":"+34600000001"}`},
		{"GET", "/number-verification/v2/device-phone-number", ""},
		{"POST", "/sandbox/tokens", `{"phoneNumber":"nope"}`},
		{"GET", "/authorize?client_id=sandbox-demo-app&redirect_uri=http://x/cb&response_type=code&scope=openid", ""},
	} {
		want := fetch(binary.issuer, c.method, c.path, c.body)
		if got := fetch(inproc.Issuer, c.method, c.path, c.body); got != want {
			t.Errorf("%s %s:\nnumbergate sandbox: %.400s\nsandboxtest:        %.400s", c.method, c.path, want, got)
		}
	}
}
