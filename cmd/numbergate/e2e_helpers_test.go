package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/numbergate/numbergate/internal/sandbox"
)

// answerWait bounds a wait for something that must happen (an answer, a
// state change the test polls for). It is generous on purpose: a loaded
// CI machine is slow, and a test must never fail because of that; a
// working server answers long before it.
const answerWait = time.Minute

// silenceWait is how long a test listens for an answer that must not come.
// Too short lets a broken server pass; it never fails a good one.
const silenceWait = time.Second

// party plays an app backend: it holds a client's private key and drives
// the flow with real HTTP, never following redirects (the redirect goes to
// the app, which is not running).
type party struct {
	t        testing.TB
	issuer   string
	clientID string
	redirect string
	key      jose.JSONWebKey
	// device is the HTTP client the "device" uses for /authorize.
	device *http.Client
	http   *http.Client
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func newTestKey(t testing.TB) jose.JSONWebKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return jose.JSONWebKey{Key: k, KeyID: "test-" + rand.Text()[:8], Algorithm: "ES256", Use: "sig"}
}

// deviceClient makes /authorize requests from a chosen loopback source
// address, as a device on the mobile network would.
func deviceClient(src string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	return &http.Client{
		Transport:     &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
		CheckRedirect: noRedirect,
		Timeout:       answerWait,
	}
}

func pkce() (verifier, challenge string) {
	verifier = rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

type authzResult struct {
	status   int
	code     string
	state    string
	err      string
	errDesc  string
	location string
	body     string
}

func (p *party) authorize(extra url.Values) authzResult {
	p.t.Helper()
	q := url.Values{
		"response_type": {"code"},
		"client_id":     {p.clientID},
		"redirect_uri":  {p.redirect},
		"scope":         {"openid number-verification:verify dpv:FraudPreventionAndDetection"},
		"state":         {"st-" + rand.Text()[:6]},
		"nonce":         {"n-" + rand.Text()[:6]},
	}
	for k, v := range extra {
		if len(v) == 1 && v[0] == "" {
			q.Del(k)
			continue
		}
		q[k] = v
	}
	resp, err := p.device.Get(p.issuer + "/authorize?" + q.Encode())
	if err != nil {
		p.t.Fatalf("authorize: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	res := authzResult{status: resp.StatusCode, body: string(body)}
	if loc := resp.Header.Get("Location"); loc != "" {
		res.location = loc
		u, err := url.Parse(loc)
		if err != nil {
			p.t.Fatalf("bad Location %q", loc)
		}
		res.code, res.state = u.Query().Get("code"), u.Query().Get("state")
		res.err, res.errDesc = u.Query().Get("error"), u.Query().Get("error_description")
		if got := q.Get("state"); res.state != got {
			p.t.Errorf("state not passed through: got %q want %q", res.state, got)
		}
	}
	return res
}

func (p *party) assertion(mod func(*jwt.Claims)) string {
	p.t.Helper()
	now := time.Now()
	c := jwt.Claims{
		Issuer:   p.clientID,
		Subject:  p.clientID,
		Audience: jwt.Audience{p.issuer + "/token"},
		ID:       rand.Text(),
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(60 * time.Second)),
	}
	if mod != nil {
		mod(&c)
	}
	return p.sign(c, nil)
}

func (p *party) sign(c any, extraHeaders map[jose.HeaderKey]any) string {
	p.t.Helper()
	opts := (&jose.SignerOptions{}).WithType("client-authentication+jwt")
	for k, v := range extraHeaders {
		opts = opts.WithHeader(k, v)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: p.key}, opts)
	if err != nil {
		p.t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}

type tokenResult struct {
	status      int
	AccessToken string `json:"access_token"`
	IDToken     string `json:"id_token"`
	ExpiresIn   int    `json:"expires_in"`
	Refresh     string `json:"refresh_token"`
	TokenType   string `json:"token_type"`
	Error       string `json:"error"`
	Description string `json:"error_description"`
	retryAfter  string // the Retry-After header
}

func (p *party) token(code, verifier, assertion string) tokenResult {
	p.t.Helper()
	form := url.Values{
		"grant_type":            {"authorization_code"},
		"code":                  {code},
		"redirect_uri":          {p.redirect},
		"client_id":             {p.clientID},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
	if verifier != "" {
		form.Set("code_verifier", verifier)
	}
	resp, err := p.http.PostForm(p.issuer+"/token", form)
	if err != nil {
		p.t.Fatalf("token: %v", err)
	}
	defer resp.Body.Close()
	var tr tokenResult
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &tr); err != nil {
		p.t.Fatalf("token response %d is not JSON: %s", resp.StatusCode, body)
	}
	tr.status, tr.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
	return tr
}

// flow runs authorize + token and returns the access token.
func (p *party) flow(scope, loginHint string) tokenResult {
	p.t.Helper()
	verifier, challenge := pkce()
	q := url.Values{"scope": {scope}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	if loginHint != "" {
		q.Set("login_hint", loginHint)
	}
	ar := p.authorize(q)
	if ar.code == "" {
		p.t.Fatalf("authorize gave no code: status %d, error %q (%s), body %s", ar.status, ar.err, ar.errDesc, ar.body)
	}
	tr := p.token(ar.code, verifier, p.assertion(nil))
	if tr.status != 200 || tr.AccessToken == "" {
		p.t.Fatalf("token: %d %s %s", tr.status, tr.Error, tr.Description)
	}
	return tr
}

type apiResult struct {
	status     int
	body       map[string]any
	correlator string
	retryAfter string // the Retry-After header
}

func (p *party) call(method, path, token, body string, hdr map[string]string) apiResult {
	p.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, p.issuer+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := p.http.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	res := apiResult{status: resp.StatusCode, correlator: resp.Header.Get("x-correlator"), retryAfter: resp.Header.Get("Retry-After")}
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &res.body); err != nil {
			p.t.Fatalf("%s %s: body is not JSON: %s", method, path, raw)
		}
	}
	return res
}

func (p *party) verify(token, body string) apiResult {
	return p.call("POST", "/number-verification/v2/verify", token, body, nil)
}

// startSandbox runs the real sandbox on 127.0.0.1:0 and returns a party
// holding the demo client's credentials from sandbox-client.json.
func startSandbox(t testing.TB, dir string) *party {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		done <- runSandboxOn(ctx, ln, "http://"+ln.Addr().String(), dir, slog.New(slog.DiscardHandler), io.Discard, func() { close(ready) })
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("sandbox did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sandbox stopped with %v", err)
		}
	})
	data, err := os.ReadFile(filepath.Join(dir, sandbox.CredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	var creds struct {
		Issuer      string          `json:"issuer"`
		ClientID    string          `json:"client_id"`
		RedirectURI string          `json:"redirect_uri"`
		PrivateJWK  json.RawMessage `json:"private_jwk"`
	}
	if err := json.Unmarshal(data, &creds); err != nil {
		t.Fatal(err)
	}
	var key jose.JSONWebKey
	if err := key.UnmarshalJSON(creds.PrivateJWK); err != nil {
		t.Fatal(err)
	}
	if key.KeyID == "" || key.Algorithm == "" || key.IsPublic() {
		t.Fatalf("sandbox private_jwk must be private with kid and alg: %+v", key)
	}
	return &party{
		t: t, issuer: creds.Issuer, clientID: creds.ClientID, redirect: creds.RedirectURI, key: key,
		device: deviceClient(""),
		http:   &http.Client{CheckRedirect: noRedirect, Timeout: answerWait},
	}
}

func decodeJWTPayload(t testing.TB, s string) map[string]any {
	t.Helper()
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", s)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
