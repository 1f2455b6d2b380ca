package cli_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/numbergate/numbergate/internal/cli"
	"github.com/numbergate/numbergate/internal/config"
	"github.com/numbergate/numbergate/internal/netid"
	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/sqlite"
)

var now = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

type env struct {
	t      *testing.T
	dir    string
	config string
	cli    *cli.CLI
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "numbergate.yaml")
	writeFile(t, cfg, `listen: 127.0.0.1:8443
issuer: https://nv.example.net
data_dir: data
network:
  static:
    - prefix: 192.0.2.0/24
      msisdn: "+34600000099"
    - prefix: 192.0.2.32/27
      msisdn: "+34600000098"
  radius:
    listen: 127.0.0.1:0
    clients: [{cidr: 127.0.0.1, secret: "do-not-print"}]
    idle_timeout: 1h
  cgnat:
    files: [alloc.log]
`)
	c := cli.New(func(ctx context.Context, cfg *config.Config) (nv.Store, error) { return sqlite.Open(ctx, cfg.DataDir) })
	c.Getenv = func(string) string { return "" }
	c.Now = func() time.Time { return now }
	// The sources serve builds from the config (cmd/numbergate wires its
	// registry; the real netid sources here).
	c.Resolver = func(ctx context.Context, cfg *config.Config, st nv.Store) (nv.Resolver, error) {
		idle := cfg.Network.RADIUS.IdleTimeout
		static := netid.NewStatic(st)
		if err := static.Reload(ctx); err != nil {
			return nil, err
		}
		return netid.NewChainOrder(nil, cfg.Network.Order, netid.NewCGNAT(st, idle), netid.NewRADIUS(st, idle), static)
	}
	return &env{t: t, dir: dir, config: cfg, cli: c}
}

// run runs a clients or sessions command and returns stdout, stderr, err.
func (e *env) run(group string, args ...string) (string, string, error) {
	e.t.Helper()
	var stdout, stderr bytes.Buffer
	var err error
	switch group {
	case "clients":
		err = e.cli.Clients(context.Background(), args, &stdout, &stderr)
	case "sessions":
		err = e.cli.Sessions(context.Background(), args, &stdout, &stderr)
	}
	return stdout.String(), stderr.String(), err
}

func (e *env) store() nv.Store {
	e.t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(e.dir, "data"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { st.Close() })
	return st
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// jwksFile writes a key set with the given keys (as go-jose keys) and
// returns its path.
func (e *env) jwksFile(name string, keys ...jose.JSONWebKey) string {
	e.t.Helper()
	data, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		e.t.Fatal(err)
	}
	path := filepath.Join(e.dir, name)
	writeFile(e.t, path, string(data))
	return path
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (e *env) addArgs(id, jwks string, extra ...string) []string {
	return append([]string{"add", "--config", e.config, "--client-id", id,
		"--redirect-uri", "https://app.example.com/cb", "--jwks", jwks,
		"--scope", "openid number-verification:verify", "--purpose", "dpv:FraudPreventionAndDetection"}, extra...)
}

func TestClientsRoundTrip(t *testing.T) {
	e := newEnv(t)
	pub := e.jwksFile("pub.json", jose.JSONWebKey{Key: ecKey(t).Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"})

	out, stderr, err := e.run("clients", append(e.addArgs("app-1", pub),
		"--redirect-uri", "https://app.example.com/cb2", "--scope", nv.ScopeDevicePhoneNumber, "--require-pkce")...)
	if err != nil {
		t.Fatalf("add: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, `added client "app-1"`) || stderr != "" {
		t.Errorf("add output %q, stderr %q", out, stderr)
	}

	got, err := e.store().Client(context.Background(), "app-1")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"https://app.example.com/cb", "https://app.example.com/cb2"}; strings.Join(got.RedirectURIs, " ") != strings.Join(want, " ") {
		t.Errorf("redirect URIs %q", got.RedirectURIs)
	}
	if strings.Join(got.Scopes, " ") != "openid number-verification:verify "+nv.ScopeDevicePhoneNumber {
		t.Errorf("scopes %q", got.Scopes)
	}
	if !got.RequirePKCE || !got.AllowsPurpose("dpv:FraudPreventionAndDetection") || !got.CreatedAt.Equal(now) {
		t.Errorf("client %+v", got)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(got.JWKS, &set); err != nil || len(set.Keys) != 1 || !set.Keys[0].IsPublic() || set.Keys[0].KeyID != "k1" {
		t.Errorf("stored JWKS %s (%v)", got.JWKS, err)
	}

	// Flags may follow in any order, and a second client lists after the first.
	if _, stderr, err := e.run("clients", e.addArgs("app-0", pub)...); err != nil {
		t.Fatalf("add app-0: %v %s", err, stderr)
	}
	out, _, err = e.run("clients", "list", "--config", e.config)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "CLIENT ID") || !strings.HasPrefix(lines[1], "app-0") || !strings.HasPrefix(lines[2], "app-1") {
		t.Fatalf("list:\n%s", out)
	}
	for _, want := range []string{"https://app.example.com/cb,https://app.example.com/cb2", "dpv:FraudPreventionAndDetection", "required", "k1", "2025-03-01T12:00:00Z"} {
		if !strings.Contains(lines[2], want) {
			t.Errorf("list line lacks %q: %s", want, lines[2])
		}
	}

	out, _, err = e.run("clients", "list", "--config", e.config, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var listed []map[string]any
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed) != 2 || listed[1]["client_id"] != "app-1" || listed[1]["require_pkce"] != true {
		t.Errorf("list --json: %v\n%s", err, out)
	}

	// Duplicate id fails without --replace, succeeds with it.
	_, _, err = e.run("clients", e.addArgs("app-1", pub)...)
	if err == nil || !strings.Contains(err.Error(), `a client with id "app-1" already exists (add --replace`) {
		t.Errorf("duplicate add: %v", err)
	}
	out, _, err = e.run("clients", e.addArgs("app-1", pub, "--replace")...)
	if err != nil || !strings.Contains(out, `replaced client "app-1"`) {
		t.Errorf("replace: %v %q", err, out)
	}
	if got, _ := e.store().Client(context.Background(), "app-1"); got.RequirePKCE || len(got.RedirectURIs) != 1 {
		t.Errorf("after replace %+v", got)
	}

	out, _, err = e.run("clients", "remove", "--config", e.config, "--client-id", "app-1")
	if err != nil || !strings.Contains(out, `removed client "app-1"`) {
		t.Errorf("remove: %v %q", err, out)
	}
	if _, err := e.store().Client(context.Background(), "app-1"); !errors.Is(err, nv.ErrNotFound) {
		t.Errorf("after remove: %v", err)
	}
	_, _, err = e.run("clients", "remove", "--config", e.config, "--client-id", "app-1")
	if err == nil || !strings.Contains(err.Error(), `no client with id "app-1"`) {
		t.Errorf("remove unknown: %v", err)
	}
}

func TestClientsAddRejects(t *testing.T) {
	e := newEnv(t)
	ec := ecKey(t)
	good := e.jwksFile("good.json", jose.JSONWebKey{Key: ec.Public(), KeyID: "k1"})
	private := e.jwksFile("private.json", jose.JSONWebKey{Key: ec, KeyID: "k1"})
	symmetric := e.jwksFile("oct.json", jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "s"})
	notJSON := filepath.Join(e.dir, "notjson.json")
	writeFile(t, notJSON, "-----BEGIN PUBLIC KEY-----\n")
	single := filepath.Join(e.dir, "single.json")
	k, _ := json.Marshal(jose.JSONWebKey{Key: ec.Public(), KeyID: "k1"})
	writeFile(t, single, string(k))
	empty := filepath.Join(e.dir, "empty.json")
	writeFile(t, empty, `{"keys": []}`)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	weakRSA, _ := rsa.GenerateKey(rand.Reader, 1024)
	weak := e.jwksFile("weak.json", jose.JSONWebKey{Key: weakRSA.Public(), KeyID: "r"}, jose.JSONWebKey{Key: p384.Public(), KeyID: "p384"})
	badAlg := e.jwksFile("badalg.json", jose.JSONWebKey{Key: ec.Public(), KeyID: "k1", Algorithm: "RS256"}, jose.JSONWebKey{Key: ec.Public(), KeyID: "k1", Use: "enc"})

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"private key", e.addArgs("a", private), []string{`keys[0] (kid "k1"): contains private key material ("d")`}},
		{"symmetric key", e.addArgs("a", symmetric), []string{`keys[0] (kid "s"): a symmetric (oct) key`}},
		{"not JSON", e.addArgs("a", notJSON), []string{"not a JSON Web Key Set: invalid JSON"}},
		{"single key", e.addArgs("a", single), []string{`a single JSON Web Key, not a key set`}},
		{"no keys", e.addArgs("a", empty), []string{"holds no keys"}},
		{"weak keys", e.addArgs("a", weak), []string{"RSA key of 1024 bits is too short (at least 2048)", "EC curve P-384 is not accepted (use P-256)"}},
		{"alg and use", e.addArgs("a", badAlg), []string{`"alg" "RS256" does not fit this key (use ES256)`, `"use" is "enc"`, `kid "k1" is already used by keys[0]`}},
		{"missing jwks file", e.addArgs("a", filepath.Join(e.dir, "nope.json")), []string{"--jwks: open"}},
		{"unknown scope", e.addArgs("a", good, "--scope", "email"), []string{`--scope "email" is not a scope numbergate offers`}},
		{"purpose as scope", e.addArgs("a", good, "--scope", "dpv:X"), []string{`--scope "dpv:X" is a purpose: give it with --purpose`}},
		{"no openid", []string{"add", "--config", e.config, "--client-id", "a", "--redirect-uri", "https://x/cb", "--jwks", good, "--scope", nv.ScopeVerify, "--purpose", "dpv:X"}, []string{"--scope must include openid"}},
		{"missing purpose", []string{"add", "--config", e.config, "--client-id", "a", "--redirect-uri", "https://x/cb", "--jwks", good, "--scope", "openid"}, []string{"--purpose is required"}},
		{"bad purpose", e.addArgs("a", good, "--purpose", "FraudPrevention", "--purpose", "dpv:"), []string{`--purpose "FraudPrevention" must start with "dpv:"`, `--purpose "dpv:" has no name`}},
		{"bad redirect", e.addArgs("a", good, "--redirect-uri", "/cb", "--redirect-uri", "https://x/cb#frag"), []string{`--redirect-uri "/cb": not an absolute URI`, `--redirect-uri "https://x/cb#frag": must not have a fragment`}},
		{"bad client id", e.addArgs("has space", good), []string{"--client-id: \"has space\" has a character that is not printable ASCII"}},
		{"long client id", e.addArgs(strings.Repeat("x", 129), good), []string{"--client-id: 129 characters, at most 128"}},
		{"everything missing", []string{"add"}, []string{"(6 problems)", "--config is required", "--client-id: required", "--redirect-uri is required", "--jwks is required", "--scope is required", "--purpose is required"}},
		{"unknown flag", []string{"add", "--colour"}, []string{"clients add: flag provided but not defined: -colour"}},
		{"stray argument", append(e.addArgs("a", good), "extra"), []string{`unexpected argument "extra"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := e.run("clients", tt.args...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
	// Nothing was stored by any of them.
	if cs, err := e.store().Clients(context.Background()); err != nil || len(cs) != 0 {
		t.Errorf("clients after rejected adds: %v %v", cs, err)
	}
}

func TestClientsAddWarnsAndAcceptsKeyTypes(t *testing.T) {
	e := newEnv(t)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	path := e.jwksFile("mixed.json",
		jose.JSONWebKey{Key: rsaKey.Public(), KeyID: "r", Algorithm: "PS256"},
		jose.JSONWebKey{Key: edPub, Algorithm: "EdDSA"})
	_, stderr, err := e.run("clients", e.addArgs("mixed", path, "--redirect-uri", "http://localhost:8080/cb")...)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`warning: --jwks keys[1] has no "kid"`, `warning: --redirect-uri "http://localhost:8080/cb": a loopback IP literal`} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr)
		}
	}
	got, _ := e.store().Client(context.Background(), "mixed")
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(got.JWKS, &set); err != nil || len(set.Keys) != 2 {
		t.Fatalf("stored %s %v", got.JWKS, err)
	}
}

// TestClientsAddRedirectURIRules: issue 6 item 12. Only https, http on a
// loopback host and private-use schemes in reverse-domain form (RFC 8252)
// are onboarded; javascript:, data:, file: and the rest are refused, and so
// is the dpv:* wildcard outside the sandbox. A refused add stores nothing.
func TestClientsAddRedirectURIRules(t *testing.T) {
	e := newEnv(t)
	good := e.jwksFile("good.json", jose.JSONWebKey{Key: ecKey(t).Public(), KeyID: "k1", Algorithm: "ES256"})
	accepted := []string{
		"https://app.example.com/cb",
		"https://app.example.com:8443/cb?x=1",
		"http://127.0.0.1:53117/cb",
		"http://127.9.9.9/cb",
		"http://[::1]:8080/cb",
		"http://localhost:8080/cb",
		"com.example.app:/oauth2redirect",
		"com.example.app://callback",
		"net.operator-app.v2:/cb",
	}
	for i, u := range accepted {
		if _, stderr, err := e.run("clients", e.addArgs(fmt.Sprintf("ok%d", i), good, "--redirect-uri", u)...); err != nil {
			t.Errorf("%s refused: %v\n%s", u, err, stderr)
		}
	}
	refused := map[string]string{
		"javascript:alert(1)":                 "the javascript: scheme is never a redirect target",
		"JavaScript:alert(document.cookie)//": "the javascript: scheme is never a redirect target",
		"data:text/html,<script>x</script>":   "the data: scheme is never a redirect target",
		"file:///etc/passwd":                  "the file: scheme is never a redirect target",
		"vbscript:msgbox":                     "the vbscript: scheme",
		"http://app.example.com/cb":           "plain http is accepted only on a loopback host",
		"http://10.0.0.1/cb":                  "plain http is accepted only on a loopback host",
		"http://127.0.0.1.evil.example/cb":    "plain http is accepted only on a loopback host",
		"HTTPS://app.example.com/cb":          "write the scheme in lower case",
		"https://user:pw@app.example.com/cb":  "must not carry user information",
		"https:///cb":                         "has no host",
		"myapp:/cb":                           "nor a private-use scheme in reverse-domain form",
		"com.:/cb":                            "nor a private-use scheme in reverse-domain form",
		"com.-x.app:/cb":                      "nor a private-use scheme in reverse-domain form",
		"ftp://files.example.com/cb":          "nor a private-use scheme in reverse-domain form",
		"https://app.example.com/cb#":         "must not have a fragment",
	}
	for u, want := range refused {
		_, _, err := e.run("clients", e.addArgs("bad", good, "--redirect-uri", u)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to say %q", u, err, want)
		}
	}
	_, _, err := e.run("clients", e.addArgs("wild", good, "--purpose", nv.AnyPurpose)...)
	if err == nil || !strings.Contains(err.Error(), "the wildcard exists only for the sandbox") {
		t.Errorf("dpv:* accepted outside the sandbox: %v", err)
	}
	for _, id := range []string{"bad", "wild"} {
		if _, err := e.store().Client(context.Background(), id); !errors.Is(err, nv.ErrNotFound) {
			t.Errorf("client %q stored after a refused add: %v", id, err)
		}
	}
}

func TestUsage(t *testing.T) {
	e := newEnv(t)
	stdout, stderr, err := e.run("clients", "add", "-h")
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(stdout, "usage: numbergate clients add") || !strings.Contains(stdout, "-require-pkce") || stderr != "" {
		t.Errorf("add -h: help belongs on stdout: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	if _, _, err := e.run("clients"); err == nil || !strings.Contains(err.Error(), "a subcommand is required") {
		t.Errorf("no subcommand: %v", err)
	}
	if _, _, err := e.run("sessions", "frobnicate"); err == nil || !strings.Contains(err.Error(), `unknown subcommand "frobnicate"`) {
		t.Errorf("unknown subcommand: %v", err)
	}
	if _, _, err := e.run("clients", "list"); err == nil || !strings.Contains(err.Error(), "--config is required") {
		t.Errorf("list without config: %v", err)
	}
	bad := filepath.Join(e.dir, "bad.yaml")
	writeFile(t, bad, "listen: 1\n")
	if _, _, err := e.run("clients", "list", "--config", bad); err == nil || !strings.Contains(err.Error(), "invalid configuration") {
		t.Errorf("bad config: %v", err)
	}
}

func TestSessions(t *testing.T) {
	e := newEnv(t)
	st := e.store()
	ctx := context.Background()
	sessions := []nv.NetworkSession{
		{Prefix: netip.MustParsePrefix("10.0.0.7/32"), MSISDN: "+34600000007", SessionID: "s7", NAS: "10.20.0.1", IMSI: "214070000000007", StartedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-10 * time.Minute)},
		{Prefix: netip.MustParsePrefix("2001:db8:1:2::/64"), MSISDN: "+34600000008", SessionID: "s8", NAS: "pgw-1", StartedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-2 * time.Hour)},
	}
	for _, s := range sessions {
		if err := st.StartSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.AllocatePortBlock(ctx, nv.PortBlock{Private: netip.MustParseAddr("10.0.0.7"), Public: netip.MustParseAddr("203.0.113.5"), FirstPort: 40000, LastPort: 40999, Start: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}

	out, _, err := e.run("sessions", "list", "--config", e.config)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "+34600000007") || !strings.Contains(out, "+34*******07") || !strings.Contains(out, "21407********07") {
		t.Errorf("list not masked:\n%s", out)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[1], "10.0.0.7/32") || !strings.HasPrefix(lines[2], "2001:db8:1:2::/64") {
		t.Errorf("list:\n%s", out)
	}
	out, _, _ = e.run("sessions", "list", "--config", e.config, "--show-numbers")
	if !strings.Contains(out, "+34600000007") || !strings.Contains(out, "214070000000007") {
		t.Errorf("list --show-numbers:\n%s", out)
	}

	out, _, err = e.run("sessions", "lookup", "--config", e.config, "10.0.0.7")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"10.0.0.7/32", "+34*******07", "s7", "10.20.0.1", "2025-03-01T11:50:00Z"} {
		if !strings.Contains(out, want) {
			t.Errorf("lookup lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "+34600000007") {
		t.Errorf("lookup not masked:\n%s", out)
	}

	// Through CGNAT, with the address after the flags or before them.
	out, _, err = e.run("sessions", "lookup", "203.0.113.5:40123", "--config", e.config, "--show-numbers")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "203.0.113.5:40123 held by 10.0.0.7") || !strings.Contains(out, "+34600000007") {
		t.Errorf("cgnat lookup:\n%s", out)
	}
	// Before the allocation started there is no mapping, and the public
	// address itself has no session.
	_, stderr, err := e.run("sessions", "lookup", "--config", e.config, "--at", "2025-03-01T10:00:00Z", "203.0.113.5:40123")
	if err == nil || !strings.Contains(err.Error(), "would refuse 203.0.113.5:40123") || !strings.Contains(stderr, "no CGNAT allocation holds 203.0.113.5:40123") {
		t.Errorf("lookup before allocation: %v\n%s", err, stderr)
	}

	// The IPv6 session is older than the idle timeout (1h in the config).
	_, _, err = e.run("sessions", "lookup", "--config", e.config, "2001:db8:1:2::99")
	if err == nil || !strings.Contains(err.Error(), "would refuse") {
		t.Errorf("idle session: %v", err)
	}
	out, _, err = e.run("sessions", "lookup", "--config", e.config, "--at", "2025-03-01T10:30:00Z", "[2001:db8:1:2::99]")
	if err != nil || !strings.Contains(out, "2001:db8:1:2::/64") {
		t.Errorf("lookup at an earlier time: %v\n%s", err, out)
	}

	// No session, but a static route (longest prefix): the server answers
	// from it, masked. (serve loads the configured routes into the store.)
	if err := st.ReplaceStaticRoutes(ctx, []nv.StaticRoute{
		{Prefix: netip.MustParsePrefix("192.0.2.0/24"), MSISDN: "+34600000099"},
		{Prefix: netip.MustParsePrefix("192.0.2.32/27"), MSISDN: "+34600000098"},
	}); err != nil {
		t.Fatal(err)
	}
	out, _, err = e.run("sessions", "lookup", "--config", e.config, "192.0.2.44")
	if err != nil || !strings.Contains(out, "none for 192.0.2.44") || !strings.Contains(out, "+34*******98 (source static)") {
		t.Errorf("static: %v\n%s", err, out)
	}

	for _, args := range [][]string{
		{"lookup", "--config", e.config},
		{"lookup", "--config", e.config, "not-an-ip"},
		{"lookup", "--config", e.config, "--at", "yesterday", "10.0.0.7"},
	} {
		if _, _, err := e.run("sessions", args...); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

func TestNoSecretsInOutput(t *testing.T) {
	e := newEnv(t)
	pub := e.jwksFile("pub.json", jose.JSONWebKey{Key: ecKey(t).Public(), KeyID: "k1"})
	var all strings.Builder
	for _, args := range [][]string{e.addArgs("x", pub), {"list", "--config", e.config}, {"list", "--config", e.config, "--json"}} {
		out, stderr, err := e.run("clients", args...)
		all.WriteString(out + stderr)
		if err != nil {
			all.WriteString(err.Error())
		}
	}
	if strings.Contains(all.String(), "do-not-print") {
		t.Errorf("RADIUS secret printed:\n%s", all.String())
	}
}
