package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/numbergate/numbergate/internal/sandbox"
)

// TestTry runs `numbergate try` against a fresh sandbox: it prints every
// step, never the access token in full, and exits 0 only when verified.
func TestTry(t *testing.T) {
	dir := t.TempDir()
	startSandbox(t, dir)
	creds := filepath.Join(dir, sandbox.CredentialsFile)
	ctx := context.Background()

	try := func(args ...string) (string, error) {
		var out, errw bytes.Buffer
		err := run(ctx, append([]string{"try", "--client", creds}, args...), func(string) string { return "" }, &out, &errw)
		return out.String() + errw.String(), err
	}

	t.Run("verified", func(t *testing.T) {
		out, err := try("--phone", "+34600000001")
		if err != nil {
			t.Fatalf("try: %v\n%s", err, out)
		}
		for _, want := range []string{
			"1. discovery", "2. authorize", "/authorize?", "login_hint=tel%3A%2B34600000001",
			"Location: http://127.0.0.1:9999/callback?", "code ", "3. token", "private_key_jwt ES256",
			"id_token claims", "sub", "nonce", "4. verify", `{"phoneNumber": "+34600000001"}`,
			`"devicePhoneNumberVerified": true`, "x-correlator", "VERIFIED: +34600000001",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		// The access token and the code appear only masked: 6 characters
		// and their length.
		if !regexp.MustCompile(`access_token \S{6}…\(\d+ chars\)`).MatchString(out) {
			t.Errorf("access token not shown masked:\n%s", out)
		}
		if !regexp.MustCompile(`callback\?code=\S{6}…\(\d+ chars\)`).MatchString(out) ||
			!regexp.MustCompile(`(?m)^\s+code \S{6}…\(\d+ chars\) \(single use`).MatchString(out) {
			t.Errorf("code not shown masked:\n%s", out)
		}
		if strings.Contains(out, "access_token\":") {
			t.Errorf("raw token response printed:\n%s", out)
		}
	})

	t.Run("hashed and signed request object", func(t *testing.T) {
		out, err := try("--phone", "+34600000002", "--hashed", "--signed")
		if err != nil {
			t.Fatalf("try: %v\n%s", err, out)
		}
		if !strings.Contains(out, "hashedPhoneNumber") || !strings.Contains(out, "request=") || strings.Contains(out, `"phoneNumber"`) {
			t.Errorf("hashed/signed flow not shown:\n%s", out)
		}
	})

	t.Run("another device: not verified, non-zero exit", func(t *testing.T) {
		out, err := try("--phone", "+34600000001", "--device", "+34600000009")
		if !errors.Is(err, errNotVerified) {
			t.Fatalf("err = %v, want not verified\n%s", err, out)
		}
		if !strings.Contains(out, `"devicePhoneNumberVerified": false`) || !strings.Contains(out, "NOT VERIFIED") {
			t.Errorf("output:\n%s", out)
		}
	})

	t.Run("unrecognised device: access_denied", func(t *testing.T) {
		out, err := try("--phone", "+34600000001", "--device", "+99900000001")
		if err == nil || !strings.Contains(err.Error(), "access_denied") || !strings.Contains(out, "error=access_denied") {
			t.Errorf("err = %v\n%s", err, out)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		if _, err := try("--phone", "600000001"); err == nil {
			t.Error("a number without + was accepted")
		}
		var out, errw bytes.Buffer
		err := run(ctx, []string{"try", "--client", filepath.Join(dir, "missing.json")}, func(string) string { return "" }, &out, &errw)
		if err == nil || !strings.Contains(err.Error(), "numbergate sandbox") {
			t.Errorf("missing credentials: %v", err)
		}
	})
}
