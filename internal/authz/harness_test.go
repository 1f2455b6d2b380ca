package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/server"
	"github.com/numbergate/numbergate/internal/sqlite"
	"github.com/numbergate/numbergate/internal/testlog"
)

const (
	testIssuer   = "https://nv.example"
	testRedirect = "https://app.example/cb"
	testNumber   = nv.PhoneNumber("+34600000001")
	purpose      = "dpv:FraudPreventionAndDetection"
	scopeAll     = "openid " + nv.ScopeVerify + " " + purpose
	// knownDevice is the address the fake resolver identifies.
	knownDevice = "10.0.0.1:40000"
	// badHintDevice makes the fake resolver refuse the login_hint;
	// brokenDevice makes it fail.
	badHintDevice = "10.0.0.2:40000"
	brokenDevice  = "10.0.0.3:40000"
)

// spyStore records the write operations the adapter performs on a real
// SQLite store.
type spyStore struct {
	nv.Store
	mu          sync.Mutex
	ops         []string
	beforeIssue func(nv.TokenIssue) error
	// consumeErr, when set, is what ConsumeJTI answers instead of storing.
	consumeErr error
}

func (s *spyStore) record(op string) {
	s.mu.Lock()
	s.ops = append(s.ops, op)
	s.mu.Unlock()
}

// take returns the operations recorded since the last call.
func (s *spyStore) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ops := s.ops
	s.ops = nil
	return ops
}

func (s *spyStore) ConsumeJTI(ctx context.Context, issuer, jti string, exp, now time.Time) error {
	s.record("ConsumeJTI")
	s.mu.Lock()
	cerr := s.consumeErr
	s.mu.Unlock()
	if cerr != nil {
		return cerr
	}
	return s.Store.ConsumeJTI(ctx, issuer, jti, exp, now)
}
func (s *spyStore) SaveAuthSession(ctx context.Context, a nv.AuthSession) error {
	s.record("SaveAuthSession")
	return s.Store.SaveAuthSession(ctx, a)
}
func (s *spyStore) CreateGrant(ctx context.Context, g nv.Grant) error {
	s.record("CreateGrant")
	return s.Store.CreateGrant(ctx, g)
}
func (s *spyStore) RedeemGrant(ctx context.Context, id string, data []byte, now time.Time) error {
	s.record("RedeemGrant")
	return s.Store.RedeemGrant(ctx, id, data, now)
}
func (s *spyStore) RevokeGrant(ctx context.Context, id string) error {
	s.record("RevokeGrant")
	return s.Store.RevokeGrant(ctx, id)
}
func (s *spyStore) SaveToken(ctx context.Context, t nv.AccessToken) error {
	s.record("SaveToken")
	return s.Store.SaveToken(ctx, t)
}
func (s *spyStore) RecordUsage(ctx context.Context, r nv.UsageRecord) error {
	s.record("RecordUsage")
	return s.Store.RecordUsage(ctx, r)
}

// onIssue sets what IssueToken runs first (nil: nothing).
func (s *spyStore) onIssue(f func(nv.TokenIssue) error) {
	s.mu.Lock()
	s.beforeIssue = f
	s.mu.Unlock()
}

// failConsume makes ConsumeJTI answer err (nil: store again).
func (s *spyStore) failConsume(err error) {
	s.mu.Lock()
	s.consumeErr = err
	s.mu.Unlock()
}

// IssueToken runs beforeIssue (when set) first: a test's way to change
// the store just before the combined write (another node wins the code,
// the store goes away).
func (s *spyStore) IssueToken(ctx context.Context, ti nv.TokenIssue) error {
	s.record("IssueToken")
	s.mu.Lock()
	before := s.beforeIssue
	s.mu.Unlock()
	if before != nil {
		if err := before(ti); err != nil {
			return err
		}
	}
	return s.Store.IssueToken(ctx, ti)
}

// fakeResolver identifies knownDevice only.
type fakeResolver struct{}

func (fakeResolver) Resolve(_ context.Context, c nv.Connection) (nv.Identity, error) {
	switch c.Addr {
	case netip.MustParseAddrPort(knownDevice):
		return nv.Identity{MSISDN: testNumber, Method: nv.AuthNetwork, Source: "static"}, nil
	case netip.MustParseAddrPort(badHintDevice):
		return nv.Identity{}, nv.Errorf(nv.CodeInvalidArgument, "login_hint must be tel:+E164")
	case netip.MustParseAddrPort(brokenDevice):
		return nv.Identity{}, errors.New("lookup exploded at /var/lib/secret")
	}
	return nv.Identity{}, nv.ErrUnknownDevice
}

type harness struct {
	t     testing.TB
	store *spyStore
	srv   *Server
	h     http.Handler
	log   *testlog.Buffer
	mu    sync.Mutex
	now   time.Time
}

type testClient struct {
	id  string
	key jose.JSONWebKey
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	st, err := sqlite.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &harness{t: t, store: &spyStore{Store: st}, log: &testlog.Buffer{}, now: time.Now().Truncate(time.Second)}
	h.srv, err = New(t.Context(), Config{
		Issuer:     testIssuer,
		Store:      h.store,
		Resolver:   fakeResolver{},
		ClientAddr: func(r *http.Request) netip.AddrPort { ap, _ := netip.ParseAddrPort(r.RemoteAddr); return ap },
		Logger:     slog.New(slog.NewTextHandler(h.log, nil)),
		Now:        h.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.h = server.Routes{Authz: h.srv.Routes()}.Handler()
	return h
}

func (h *harness) clock() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

func (h *harness) advance(d time.Duration) {
	h.mu.Lock()
	h.now = h.now.Add(d)
	h.mu.Unlock()
}

// client onboards a client with a fresh ES256 key.
func (h *harness) client(id string, mod func(*nv.Client)) testClient {
	h.t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		h.t.Fatal(err)
	}
	key := jose.JSONWebKey{Key: k, KeyID: id + "-key", Algorithm: "ES256", Use: "sig"}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.Public()}})
	c := nv.Client{ID: id, RedirectURIs: []string{testRedirect}, JWKS: jwks,
		Scopes: []string{nv.ScopeOpenID, nv.ScopeVerify}, Purposes: []string{purpose}, CreatedAt: time.Now()}
	if mod != nil {
		mod(&c)
	}
	if err := h.store.PutClient(h.t.Context(), c); err != nil {
		h.t.Fatal(err)
	}
	return testClient{id: id, key: key}
}

func (c testClient) sign(t testing.TB, claims any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: c.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", c.key.KeyID))
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// assertion is a valid client assertion, changed by mod.
func (h *harness) assertion(c testClient, mod func(*jwt.Claims)) string {
	now := h.clock()
	cl := jwt.Claims{Issuer: c.id, Subject: c.id, Audience: jwt.Audience{testIssuer + "/token"}, ID: rand.Text(),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(60 * time.Second))}
	if mod != nil {
		mod(&cl)
	}
	return c.sign(h.t, cl)
}

func pkcePair() (verifier, challenge string) {
	verifier = rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// authzResult is an /authorize answer.
type authzResult struct {
	status          int
	location        *url.URL
	code, err, desc string
	state, issParam string
	body            string
}

func (h *harness) do(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.h.ServeHTTP(rec, req)
	return rec
}

// authorizeRaw sends GET /authorize?rawQuery from addr.
func (h *harness) authorizeRaw(rawQuery, addr string) authzResult {
	req := httptest.NewRequest(http.MethodGet, testIssuer+"/authorize?"+rawQuery, nil)
	req.RemoteAddr = addr
	return parseAuthz(h.do(req))
}

func parseAuthz(rec *httptest.ResponseRecorder) authzResult {
	res := authzResult{status: rec.Code, body: rec.Body.String()}
	if loc := rec.Header().Get("Location"); loc != "" {
		u, err := url.Parse(loc)
		if err == nil {
			res.location = u
			q := u.Query()
			res.code, res.err, res.desc, res.state, res.issParam = q.Get("code"), q.Get("error"), q.Get("error_description"), q.Get("state"), q.Get("iss")
		}
	}
	return res
}

// authorizeParams are a valid request's parameters for client c.
func authorizeParams(c testClient, challenge string) url.Values {
	q := url.Values{
		"response_type": {"code"}, "client_id": {c.id}, "redirect_uri": {testRedirect},
		"scope": {scopeAll}, "state": {"st-1"}, "nonce": {"n-1"},
	}
	if challenge != "" {
		q.Set("code_challenge", challenge)
		q.Set("code_challenge_method", "S256")
	}
	return q
}

func (h *harness) authorize(q url.Values) authzResult {
	return h.authorizeRaw(q.Encode(), knownDevice)
}

// code runs a successful /authorize and returns the code and verifier.
func (h *harness) code(c testClient) (code, verifier string) {
	h.t.Helper()
	verifier, challenge := pkcePair()
	a := h.authorize(authorizeParams(c, challenge))
	if a.code == "" {
		h.t.Fatalf("authorize: no code: %d %q %q %s", a.status, a.err, a.desc, a.body)
	}
	return a.code, verifier
}

type tokenResult struct {
	status      int
	AccessToken string `json:"access_token"`
	IDToken     string `json:"id_token"`
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func (h *harness) tokenForm(form url.Values, contentType string) tokenResult {
	req := httptest.NewRequest(http.MethodPost, testIssuer+"/token", strings.NewReader(form.Encode()))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.RemoteAddr = "192.0.2.10:50000"
	rec := h.do(req)
	var tr tokenResult
	if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil {
		h.t.Fatalf("token answer %d is not JSON: %s", rec.Code, rec.Body)
	}
	tr.status = rec.Code
	return tr
}

func tokenRequest(c testClient, code, verifier, assertion string) url.Values {
	f := url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect},
		"client_id": {c.id}, "client_assertion_type": {assertionType}, "client_assertion": {assertion},
	}
	if verifier != "" {
		f.Set("code_verifier", verifier)
	}
	return f
}

func (h *harness) token(c testClient, code, verifier, assertion string) tokenResult {
	return h.tokenForm(tokenRequest(c, code, verifier, assertion), "application/x-www-form-urlencoded")
}
