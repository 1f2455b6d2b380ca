package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/numbergate/numbergate/internal/sandbox"
	"github.com/numbergate/numbergate/internal/testlog"
)

// runCommand runs `numbergate args...` in the background until the test
// ends; it returns stdout and stderr as they fill.
func runCommand(t *testing.T, args ...string) (stdout, stderr *testlog.Buffer) {
	t.Helper()
	stdout, stderr = &testlog.Buffer{}, &testlog.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, func(string) string { return "" }, stdout, stderr) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("numbergate %s stopped with %v\n%s", strings.Join(args, " "), err, stderr)
		}
	})
	return stdout, stderr
}

// waitFor polls s until re matches, and returns the submatches.
func waitFor(t *testing.T, s *testlog.Buffer, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(answerWait)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(s.String()); m != nil {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no match for %s in:\n%s", re, s)
	return nil
}

// TestSandboxQuickStartAsPasted runs the real command, takes the URL the
// quick start prints, requests it as curl would and finishes the flow with
// the printed code_verifier: what the quick start says works as pasted.
func TestSandboxQuickStartAsPasted(t *testing.T) {
	dir := t.TempDir()
	stdout, _ := runCommand(t, "sandbox", "--addr", "127.0.0.1:0", "--data", dir)
	m := waitFor(t, stdout, regexp.MustCompile(`curl -si '([^']+)'`))
	printed := m[1]
	if strings.Contains(printed, "tel:+") || strings.ContainsAny(printed, " \n") {
		t.Fatalf("printed URL is not percent-encoded: %s", printed)
	}
	if !strings.Contains(stdout.String(), "303 See Other") {
		t.Errorf("quick start does not say 303:\n%s", stdout)
	}
	p := partyFromCredentials(t, dir)
	if !strings.HasPrefix(printed, p.issuer+"/authorize?") {
		t.Fatalf("printed URL %s is not under the issuer %s", printed, p.issuer)
	}

	resp, err := p.device.Get(printed)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d, want 303", resp.StatusCode)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", loc)
	}
	tr := p.token(code, sandbox.QuickStartVerifier, p.assertion(nil))
	if tr.status != 200 || tr.AccessToken == "" {
		t.Fatalf("token with the printed verifier: %d %s %s", tr.status, tr.Error, tr.Description)
	}
	if r := p.verify(tr.AccessToken, `{"phoneNumber":"`+sandbox.QuickStartNumber+`"}`); r.status != 200 || r.body["devicePhoneNumberVerified"] != true {
		t.Fatalf("verify: %d %v", r.status, r.body)
	}

	// The same URL written by hand with a raw '+': the answer says to write %2B.
	raw := strings.Replace(printed, "tel%3A%2B", "tel:+", 1)
	resp, err = p.device.Get(raw)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ = url.Parse(resp.Header.Get("Location"))
	if desc := loc.Query().Get("error_description"); loc.Query().Get("error") != "invalid_request" || !strings.Contains(desc, "%2B") {
		t.Errorf("raw + in login_hint: error %q, description %q; want invalid_request naming %%2B", loc.Query().Get("error"), desc)
	}
}

// TestSandboxIssuerFlag: --issuer is what the sandbox announces and what
// assertions are checked against, whatever the listen address.
func TestSandboxIssuerFlag(t *testing.T) {
	dir := t.TempDir()
	// The issuer names another port than the one bound (port 0: no free
	// port picked, closed and raced for); the address comes from the log.
	const issuer = "http://localhost:8099"
	stdout, stderr := runCommand(t, "sandbox", "--addr", "127.0.0.1:0", "--issuer", issuer, "--data", dir)
	waitFor(t, stdout, regexp.MustCompile(`is running at (\S+)`))
	addr := waitFor(t, stderr, regexp.MustCompile(`"msg":"listening","listener":"sandbox","addr":"([^"]+)"`))[1]
	p := partyFromCredentials(t, dir)
	if p.issuer != issuer {
		t.Fatalf("credentials issuer %q, want %q", p.issuer, issuer)
	}
	resp, err := http.Get("http://" + addr + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&d)
	if d["issuer"] != issuer {
		t.Errorf("discovery issuer %v, want %s", d["issuer"], issuer)
	}

	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"sandbox", "--issuer", "http://x/"}, os.Getenv, &out, &errb); err == nil || !strings.Contains(err.Error(), "--issuer") {
		t.Errorf("a bad --issuer is refused before anything starts: %v", err)
	}
}

func TestSandboxIssuerFromAddr(t *testing.T) {
	for _, c := range []struct{ typed, bound, want string }{
		{":8081", "[::]:8081", "http://127.0.0.1:8081"},
		{"0.0.0.0:8082", "0.0.0.0:8082", "http://127.0.0.1:8082"},
		{"[::]:8083", "[::]:8083", "http://[::1]:8083"},
		{"localhost:8084", "127.0.0.1:8084", "http://localhost:8084"},
		{"127.0.0.1:0", "127.0.0.1:40001", "http://127.0.0.1:40001"},
		{"[::1]:8085", "[::1]:8085", "http://[::1]:8085"},
	} {
		bound, err := net.ResolveTCPAddr("tcp", c.bound)
		if err != nil {
			t.Fatal(err)
		}
		if got := sandboxIssuer(c.typed, bound); got != c.want {
			t.Errorf("--addr %s (bound %s): issuer %s, want %s", c.typed, c.bound, got, c.want)
		}
	}
}

// partyFromCredentials reads DIR/sandbox-client.json as an app would.
func partyFromCredentials(t *testing.T, dir string) *party {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, sandbox.CredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	var creds sandbox.Credentials
	if err := json.Unmarshal(data, &creds); err != nil {
		t.Fatal(err)
	}
	var key jose.JSONWebKey
	if err := key.UnmarshalJSON(creds.PrivateJWK); err != nil {
		t.Fatal(err)
	}
	return &party{t: t, issuer: creds.Issuer, clientID: creds.ClientID, redirect: creds.RedirectURI, key: key,
		device: deviceClient(""), http: &http.Client{CheckRedirect: noRedirect, Timeout: answerWait}}
}
