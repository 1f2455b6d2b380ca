package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// jwksKids fetches base+/jwks with client c and returns the key ids in order.
func jwksKids(t *testing.T, c *http.Client, base string) []string {
	t.Helper()
	resp, err := c.Get(base + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("jwks: %v: %s", err, body)
	}
	var kids []string
	for _, k := range set.Keys {
		if k.D != "" {
			t.Fatal("the JWKS publishes a private key")
		}
		kids = append(kids, k.Kid)
	}
	return kids
}

// idTokenKid returns the kid in the header of a compact JWS.
func idTokenKid(t *testing.T, jws string) string {
	t.Helper()
	h, _, _ := strings.Cut(jws, ".")
	raw, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var hdr struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &hdr); err != nil {
		t.Fatal(err)
	}
	return hdr.Kid
}

// TestKeyRotation: `keys rotate` adds a key the node publishes at once and
// signs with only after the delay; the old key stays published; `keys list`
// shows where each stands.
func TestKeyRotation(t *testing.T) {
	n := startServe(t, t.TempDir(), `network:
  static:
    - prefix: 127.0.0.51/32
      msisdn: "+34600000051"
`)
	p := onboard(t, n, "app-keys", "127.0.0.51")
	kids := jwksKids(t, p.http, n.issuer)
	if len(kids) != 1 {
		t.Fatalf("JWKS of a fresh server: %v, want one key", kids)
	}
	old := kids[0]
	if kid := idTokenKid(t, p.flow(scopeVerify, "").IDToken); kid != old {
		t.Fatalf("ID token kid %q, want %q", kid, old)
	}

	const delay = 4 * time.Second
	var out, errb bytes.Buffer
	rotatedAt := time.Now()
	if err := run(t.Context(), []string{"keys", "rotate", "--config", n.cfgPath, "--delay", delay.String()}, func(string) string { return "" }, &out, &errb); err != nil {
		t.Fatalf("keys rotate: %v\n%s", err, errb.String())
	}
	fields := strings.Fields(out.String())
	if len(fields) < 4 {
		t.Fatalf("keys rotate printed %q", out.String())
	}
	next := strings.TrimSuffix(fields[3], ":")

	// Published (after the node's refresh) before it signs. How soon
	// depends on the machine; that a token is never signed with a key the
	// JWKS lacks is checked below, after the activation.
	deadline := time.Now().Add(answerWait)
	var fetchedAt time.Time
	for {
		fetchedAt = time.Now()
		kids = jwksKids(t, p.http, n.issuer)
		if len(kids) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rotated key %s was not published within %s: %v", next, answerWait, kids)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if fetchedAt.Sub(rotatedAt) < delay && (kids[0] != old || kids[1] != next) {
		t.Errorf("JWKS before activation = %v, want [%s %s]", kids, old, next)
	}
	if time.Since(rotatedAt) < delay {
		if kid := idTokenKid(t, p.flow(scopeVerify, "").IDToken); kid != old && time.Since(rotatedAt) < delay {
			t.Errorf("signed with %q before the activation delay ended", kid)
		}
	}

	// After the delay: the new key signs, the old one is still published.
	deadline = time.Now().Add(delay + answerWait)
	for {
		kid := idTokenKid(t, p.flow(scopeVerify, "").IDToken)
		if kid == next {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still signing with %q long after the activation", kid)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if kids := jwksKids(t, p.http, n.issuer); len(kids) != 2 || kids[0] != next || kids[1] != old {
		t.Errorf("JWKS after activation = %v, want [%s %s] (the old key stays published)", kids, next, old)
	}

	out.Reset()
	if err := run(t.Context(), []string{"keys", "list", "--config", n.cfgPath}, func(string) string { return "" }, &out, &errb); err != nil {
		t.Fatalf("keys list: %v", err)
	}
	for _, want := range []string{old + "  ES256  published", next + "  ES256  signing"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("keys list lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "pairwise") {
		t.Errorf("keys list shows the pairwise secret:\n%s", out.String())
	}
}
