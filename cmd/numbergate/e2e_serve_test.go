package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/numbergate/numbergate/internal/config"
	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/sqlite"
	"github.com/numbergate/numbergate/internal/testlog"
	"github.com/numbergate/numbergate/internal/testnet"
)

// servedNode is a running `numbergate serve` on loopback.
type servedNode struct {
	issuer, admin string
	cfgPath       string
	stop          func()
	logs          *testlog.Buffer
	// atStoreClose are the background goroutines still running when the
	// store closed (see runningBackground).
	atStoreClose []string
}

// startServe writes a config file for dir and runs the real serve path on
// listeners bound to 127.0.0.1:0. extra is appended to the YAML.
func startServe(t *testing.T, dir, extra string) *servedNode {
	t.Helper()
	return startServeWith(t, dir, extra, serveListeners{})
}

func startServeWith(t *testing.T, dir, extra string, ls serveListeners) *servedNode {
	t.Helper()
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adm, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + pub.Addr().String()
	cfgPath := filepath.Join(dir, "numbergate.yaml")
	yaml := fmt.Sprintf("listen: %s\nissuer: %s\nadmin_listen: %s\ndata_dir: %s\n%s",
		pub.Addr(), issuer, adm.Addr(), filepath.Join(dir, "data"), extra)
	n := &servedNode{issuer: issuer, admin: "http://" + adm.Addr().String(), cfgPath: cfgPath}
	n.logs, n.stop = runServeFile(t, cfgPath, yaml, serveListeners{public: pub, admin: adm, radius: ls.radius, cgnat: ls.cgnat,
		storeClosing: func() { n.atStoreClose = runningBackground() }})
	return n
}

// runServeFile writes yaml to cfgPath and runs the real serve path on the
// listeners in ls until stop (idempotent, also run at cleanup); logs holds
// its log at debug level.
func runServeFile(t testing.TB, cfgPath, yaml string, ls serveListeners) (logs *testlog.Buffer, stop func()) {
	t.Helper()
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	logs = &testlog.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	ls.ready = func() { close(ready) }
	go func() { done <- serve(ctx, cfg, log, ls) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("serve did not start: %v\n%s", err, logs.String())
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve stopped with %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return logs, stop
}

// onboard registers a client through the real CLI and returns a party for it.
func onboard(t *testing.T, n *servedNode, id string, src string) *party {
	t.Helper()
	if src != "" && src != "127.0.0.1" {
		testnet.RequireLoopbackAliases(t)
	}
	key := newTestKey(t)
	pub, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.Public()}})
	jwksPath := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksPath, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	redirect := "https://app.example/cb"
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"clients", "add", "--config", n.cfgPath, "--client-id", id,
		"--redirect-uri", redirect, "--jwks", jwksPath,
		"--scope", "openid number-verification:verify number-verification:device-phone-number:read",
		"--purpose", "dpv:FraudPreventionAndDetection", "--require-pkce"}, os.Getenv, &out, &errb)
	if err != nil {
		t.Fatalf("clients add: %v\n%s", err, errb.String())
	}
	return &party{t: t, issuer: n.issuer, clientID: id, redirect: redirect, key: key,
		device: deviceClient(src), http: &http.Client{CheckRedirect: noRedirect, Timeout: answerWait}}
}

// TestServeStaticMap runs the production path: config file, clients added
// with the CLI, the device identified from its source address through the
// static network map, an unknown device refused, admin endpoints, restart
// keeping the signing key.
func TestServeStaticMap(t *testing.T) {
	dir := t.TempDir()
	n := startServe(t, dir, `network:
  static:
    - prefix: 127.0.0.5/32
      msisdn: "+34600000005"
`)
	p := onboard(t, n, "app-1", "127.0.0.5")

	t.Run("known device", func(t *testing.T) {
		tr := p.flow(scopeVerify, "tel:+34699999999") // login_hint is ignored in production
		r := p.verify(tr.AccessToken, `{"phoneNumber":"+34600000005"}`)
		if r.status != 200 || r.body["devicePhoneNumberVerified"] != true {
			t.Fatalf("verify = %d %v", r.status, r.body)
		}
		tr = p.flow(scopeRead, "")
		r = p.call("GET", "/number-verification/v2/device-phone-number", tr.AccessToken, "", nil)
		if r.body["devicePhoneNumber"] != "+34600000005" {
			t.Fatalf("device-phone-number = %d %v", r.status, r.body)
		}
	})

	t.Run("unknown device is access_denied", func(t *testing.T) {
		other := *p
		other.device = deviceClient("127.0.0.6")
		_, c := pkce()
		a := other.authorize(map[string][]string{"code_challenge": {c}, "code_challenge_method": {"S256"}})
		if a.err != "access_denied" || a.code != "" {
			t.Fatalf("= %q code %q (%d %s)", a.err, a.code, a.status, a.body)
		}
	})

	t.Run("spoofed X-Forwarded-For from an untrusted peer is ignored", func(t *testing.T) {
		_, c := pkce()
		req, _ := http.NewRequest("GET", n.issuer+"/authorize?response_type=code&client_id=app-1&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=openid+number-verification%3Averify+dpv%3AFraudPreventionAndDetection&state=s&code_challenge="+c+"&code_challenge_method=S256", nil)
		req.Header.Set("X-Forwarded-For", "127.0.0.5")
		resp, err := deviceClient("127.0.0.7").Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); !strings.Contains(loc, "error=access_denied") {
			t.Fatalf("Location = %q, want access_denied", loc)
		}
	})

	t.Run("PKCE required for this client", func(t *testing.T) {
		a := p.authorize(nil)
		if a.code != "" || a.err == "" {
			t.Fatalf("authorize without PKCE gave code=%q err=%q", a.code, a.err)
		}
	})

	t.Run("admin endpoints", func(t *testing.T) {
		for path, want := range map[string]string{"/healthz": "", "/readyz": "", "/metrics": "numbergate_"} {
			resp, err := http.Get(n.admin + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
				t.Errorf("%s = %d %.200s", path, resp.StatusCode, body)
			}
		}
		// The public listener does not serve them, nor the sandbox endpoint.
		for _, path := range []string{"/metrics", "/sandbox/tokens"} {
			resp, err := http.Post(n.issuer+path, "application/json", strings.NewReader(`{"phoneNumber":"+34600000005"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 404 && resp.StatusCode != 405 {
				t.Errorf("public %s = %d, want 404", path, resp.StatusCode)
			}
		}
	})

	t.Run("logs carry no number", func(t *testing.T) {
		if s := n.logs.String(); strings.Contains(s, "600000005") {
			t.Errorf("a log line carries the subscriber number:\n%s", s)
		}
	})

	t.Run("restart keeps the signing key", func(t *testing.T) {
		before := getBody(t, n.issuer+"/jwks")
		n.stop()
		n2 := startServe(t, dir, "")
		after := getBody(t, n2.issuer+"/jwks")
		var a, b struct {
			Keys []struct {
				Kid string `json:"kid"`
				X   string `json:"x"`
				D   string `json:"d"`
			} `json:"keys"`
		}
		_ = json.Unmarshal([]byte(before), &a)
		_ = json.Unmarshal([]byte(after), &b)
		if len(a.Keys) == 0 || len(b.Keys) == 0 || a.Keys[0].Kid != b.Keys[0].Kid || a.Keys[0].X != b.Keys[0].X {
			t.Fatalf("signing key changed across restart:\n%s\n%s", before, after)
		}
		if a.Keys[0].D != "" {
			t.Fatal("JWKS publishes private key material")
		}
	})
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestServeRefusesWildcardPurpose: issue 6 item 12. A store holding a
// client onboarded for dpv:* (the sandbox's wildcard) does not serve.
func TestServeRefusesWildcardPurpose(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	err = st.PutClient(context.Background(), nv.Client{ID: "sandbox-demo-app", RedirectURIs: []string{"https://app.example/cb"},
		Scopes: []string{nv.ScopeOpenID}, Purposes: []string{nv.AnyPurpose}, CreatedAt: time.Now()})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte("listen: 127.0.0.1:0\nissuer: http://127.0.0.1\ndata_dir: " + filepath.Join(dir, "data") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := net.Listen("tcp", "127.0.0.1:0")
	adm, _ := net.Listen("tcp", "127.0.0.1:0")
	defer pub.Close()
	defer adm.Close()
	err = serve(context.Background(), cfg, slog.New(slog.DiscardHandler), serveListeners{public: pub, admin: adm})
	if err == nil || !strings.Contains(err.Error(), `client "sandbox-demo-app" is onboarded for dpv:*, which only the sandbox allows`) {
		t.Fatalf("serve with a dpv:* client: %v", err)
	}
}
