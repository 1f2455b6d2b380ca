package nvclient_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/sandboxtest"
	"github.com/numbergate/numbergate/pkg/nvclient"
)

const purpose = "FraudPreventionAndDetection"

// device opens the authorization URL as the user's browser would, without
// following the redirect to the app, and returns the callback query.
func device(t *testing.T, authURL string) url.Values {
	t.Helper()
	hc := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
	resp, err := hc.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode/100 != 3 || loc.Host == "" {
		t.Fatalf("authorize answered %d, Location %q: want a redirect to the app", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query()
}

func newClient(t *testing.T, sb *sandboxtest.Sandbox) *nvclient.Client {
	t.Helper()
	cfg, err := nvclient.ReadCredentials(sb.CredentialsPath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := nvclient.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// authorize runs the redirect and the callback for a device whose
// simulated number is dev.
func authorize(t *testing.T, c *nvclient.Client, req nvclient.AuthRequest, dev string) *nvclient.Token {
	t.Helper()
	req.LoginHint = "tel:" + dev
	if req.Purpose == "" {
		req.Purpose = purpose
	}
	p, err := c.AuthorizationURL(req)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Callback(context.Background(), p, device(t, p.AuthURL))
	if err != nil {
		t.Fatalf("callback: %v", err)
	}
	return tok
}

// TestSandboxFlow runs the SDK against the real sandbox: every way of
// asking, and the answers the app acts on.
func TestSandboxFlow(t *testing.T) {
	sb := sandboxtest.Start(t)
	c := newClient(t, sb)
	ctx := context.Background()
	const dev = "+34600000001"

	t.Run("discovery", func(t *testing.T) {
		d := c.Discovery()
		if d.Issuer != sb.Issuer || d.TokenEndpoint != sb.Issuer+"/token" || !d.RequestParameterSupported {
			t.Errorf("discovery: %+v", d)
		}
	})

	cases := []struct {
		name   string
		req    nvclient.AuthRequest
		number nvclient.Number
		want   bool
	}{
		{"plain, the device's number", nvclient.AuthRequest{}, nvclient.PhoneNumber(dev), true},
		{"plain, another number", nvclient.AuthRequest{}, nvclient.PhoneNumber("+34600000002"), false},
		{"hashed here", nvclient.AuthRequest{}, nvclient.HashOf(dev), true},
		{"hashed here, another number", nvclient.AuthRequest{}, nvclient.HashOf("+34600000002"), false},
		{"hashed by the caller, upper case", nvclient.AuthRequest{}, nvclient.HashedPhoneNumber(strings.ToUpper(mustHash(t, dev))), true},
		{"signed request object", nvclient.AuthRequest{SignedRequest: true}, nvclient.PhoneNumber(dev), true},
		{"purpose with dpv: prefix", nvclient.AuthRequest{Purpose: "dpv:" + purpose}, nvclient.PhoneNumber(dev), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := authorize(t, c, tc.req, dev)
			if tok.IDClaims == nil || tok.IDClaims.Subject == "" || strings.Contains(tok.IDClaims.Subject, "600000001") {
				t.Errorf("ID token claims %+v: want a pairwise sub that is not the number", tok.IDClaims)
			}
			var logged bytes.Buffer
			slog.New(slog.NewTextHandler(&logged, nil)).Info("token", "tok", tok)
			for _, shown := range []string{fmt.Sprint(tok), fmt.Sprintf("%+v", tok), logged.String()} {
				if strings.Contains(shown, tok.AccessToken) || strings.Contains(shown, tok.IDToken) {
					t.Errorf("printing the token shows a secret: %s", shown)
				}
			}
			if tok.ExpiresIn <= 0 || tok.ExpiresIn > 300 {
				t.Errorf("expires_in %d", tok.ExpiresIn)
			}
			res, err := c.Verify(ctx, tok.AccessToken, tc.number)
			if err != nil {
				t.Fatal(err)
			}
			if res.Verified != tc.want {
				t.Errorf("verified = %v, want %v", res.Verified, tc.want)
			}
			if res.Correlator == "" {
				t.Error("no x-correlator")
			}
		})
	}

	t.Run("device phone number", func(t *testing.T) {
		tok := authorize(t, c, nvclient.AuthRequest{Scopes: []string{nvclient.ScopeDevicePhoneNumber}}, dev)
		got, err := c.DevicePhoneNumber(ctx, tok.AccessToken)
		if err != nil || got != dev {
			t.Errorf("DevicePhoneNumber = %q, %v; want %s", got, err, dev)
		}
	})

	t.Run("a token answers one call; the error carries status, code and correlator", func(t *testing.T) {
		tok := authorize(t, c, nvclient.AuthRequest{}, dev)
		if _, err := c.Verify(ctx, tok.AccessToken, nvclient.PhoneNumber(dev)); err != nil {
			t.Fatal(err)
		}
		_, err := c.Verify(nvclient.WithCorrelator(ctx, "app-req-42"), tok.AccessToken, nvclient.PhoneNumber(dev))
		var e *nvclient.Error
		if !errors.As(err, &e) {
			t.Fatalf("second call: %v, want *nvclient.Error", err)
		}
		if e.Status != 401 || e.Code != nvclient.CodeUnauthenticated || e.Correlator != "app-req-42" || e.Op != "verify" || e.Message == "" {
			t.Errorf("error = %+v", e)
		}
	})

	t.Run("a token without the operation's scope", func(t *testing.T) {
		tok := authorize(t, c, nvclient.AuthRequest{}, dev)
		_, err := c.DevicePhoneNumber(ctx, tok.AccessToken)
		var e *nvclient.Error
		if !errors.As(err, &e) || e.Status != 403 || e.Code != nvclient.CodePermissionDenied {
			t.Errorf("got %v, want 403 PERMISSION_DENIED", err)
		}
	})

	t.Run("a token not from network authentication", func(t *testing.T) {
		body := `{"phoneNumber":"` + dev + `","authMethod":"sim-swap-less-otp"}`
		resp, err := http.Post(sb.Issuer+"/sandbox/tokens", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var tr struct {
			AccessToken string `json:"access_token"`
		}
		json.NewDecoder(resp.Body).Decode(&tr)
		resp.Body.Close()
		_, err = c.Verify(ctx, tr.AccessToken, nvclient.PhoneNumber(dev))
		if e := nvclient.CodeOf(err); e != nvclient.CodeNotAuthenticatedByMobileNetwork {
			t.Errorf("got %v, want %s", err, nvclient.CodeNotAuthenticatedByMobileNetwork)
		}
	})

	t.Run("unidentified device: access_denied, typed", func(t *testing.T) {
		p, err := c.AuthorizationURL(nvclient.AuthRequest{Purpose: purpose, LoginHint: "tel:+99912345678"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Callback(ctx, p, device(t, p.AuthURL))
		var e *nvclient.Error
		if !errors.As(err, &e) || e.Op != "authorize" || e.Code != nvclient.CodeAccessDenied {
			t.Errorf("got %v, want authorize access_denied", err)
		}
	})

	t.Run("state mismatch: nothing is exchanged", func(t *testing.T) {
		p1, _ := c.AuthorizationURL(nvclient.AuthRequest{Purpose: purpose, LoginHint: "tel:" + dev})
		p2, _ := c.AuthorizationURL(nvclient.AuthRequest{Purpose: purpose, LoginHint: "tel:" + dev})
		q := device(t, p1.AuthURL)
		if _, err := c.Callback(ctx, p2, q); !errors.Is(err, nvclient.ErrStateMismatch) {
			t.Fatalf("got %v, want ErrStateMismatch", err)
		}
		// The code was not spent: the right pending still redeems it.
		if _, err := c.Callback(ctx, p1, q); err != nil {
			t.Errorf("the code was consumed by a mismatched callback: %v", err)
		}
	})

	t.Run("iss missing or foreign: refused before the exchange (RFC 9207)", func(t *testing.T) {
		p, _ := c.AuthorizationURL(nvclient.AuthRequest{Purpose: purpose, LoginHint: "tel:" + dev})
		q := device(t, p.AuthURL)
		if q.Get("iss") != sb.Issuer {
			t.Fatalf("the sandbox sent iss %q", q.Get("iss"))
		}
		for _, bad := range []url.Values{{"iss": nil}, {"iss": {"http://evil.example"}}} {
			mod := url.Values{}
			for k, v := range q {
				mod[k] = v
			}
			if bad["iss"] == nil {
				mod.Del("iss")
			} else {
				mod["iss"] = bad["iss"]
			}
			if _, err := c.Callback(ctx, p, mod); !errors.Is(err, nvclient.ErrIssuerMismatch) {
				t.Errorf("iss %v: got %v, want ErrIssuerMismatch", bad["iss"], err)
			}
		}
		if _, err := c.Callback(ctx, p, q); err != nil {
			t.Errorf("the code was spent by a refused callback: %v", err)
		}
	})

	t.Run("a code redeemed twice: invalid_grant", func(t *testing.T) {
		p, _ := c.AuthorizationURL(nvclient.AuthRequest{Purpose: purpose, LoginHint: "tel:" + dev})
		q := device(t, p.AuthURL)
		if _, err := c.Callback(ctx, p, q); err != nil {
			t.Fatal(err)
		}
		_, err := c.Callback(ctx, p, q)
		var e *nvclient.Error
		if !errors.As(err, &e) || e.Op != "token" || e.Status != 400 || e.Code != nvclient.CodeInvalidGrant {
			t.Errorf("got %v, want token 400 invalid_grant", err)
		}
	})

	t.Run("a wrong PKCE verifier: invalid_grant", func(t *testing.T) {
		p, _ := c.AuthorizationURL(nvclient.AuthRequest{Purpose: purpose, LoginHint: "tel:" + dev})
		q := device(t, p.AuthURL)
		p.CodeVerifier = strings.Repeat("A", 52)
		if code := nvclient.CodeOf(mustFail(c.Callback(ctx, p, q))); code != nvclient.CodeInvalidGrant {
			t.Errorf("got %q, want invalid_grant", code)
		}
	})

	t.Run("a key the server does not know: 401 invalid_client", func(t *testing.T) {
		cfg, _ := nvclient.ReadCredentials(sb.CredentialsPath)
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		cfg.Key, _ = nvclient.NewKey(k, cfg.Key.KeyID())
		other, err := nvclient.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := other.AuthorizationURL(nvclient.AuthRequest{Purpose: purpose, LoginHint: "tel:" + dev})
		_, err = other.Callback(ctx, p, device(t, p.AuthURL))
		var e *nvclient.Error
		if !errors.As(err, &e) || e.Status != 401 || e.Code != nvclient.CodeInvalidClient {
			t.Errorf("got %v, want token 401 invalid_client", err)
		}
	})

	t.Run("bad input is refused before any call", func(t *testing.T) {
		for _, req := range []nvclient.AuthRequest{
			{},
			{Purpose: "A B"},
			{Purpose: purpose, Scopes: []string{"dpv:Other"}},
		} {
			if _, err := c.AuthorizationURL(req); err == nil {
				t.Errorf("%+v accepted", req)
			}
		}
		for _, n := range []nvclient.Number{nvclient.PhoneNumber("34600000001"), nvclient.HashOf("+3"), nvclient.HashedPhoneNumber("abc"), {}} {
			if _, err := c.Verify(ctx, "unused", n); err == nil || nvclient.CodeOf(err) != "" {
				t.Errorf("%+v: %v, want a local error", n, err)
			}
		}
	})
}

// TestKeys: every key type and format the package takes signs assertions
// the sandbox accepts.
func TestKeys(t *testing.T) {
	sb := sandboxtest.Start(t)
	ctx := context.Background()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rs, _ := rsa.GenerateKey(rand.Reader, 2048)
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	ecDER, _ := x509.MarshalECPrivateKey(ec)
	jwk := func(k any, alg string) []byte {
		b, err := json.Marshal(jose.JSONWebKey{Key: k, KeyID: "jwk-" + alg, Algorithm: alg})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name, alg string
		data      []byte
	}{
		{"ES256 PKCS#8", "ES256", pkcs8(ec)},
		{"ES256 SEC 1", "ES256", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})},
		{"ES256 JWK", "ES256", jwk(ec, "ES256")},
		{"EdDSA PKCS#8", "EdDSA", pkcs8(ed)},
		{"EdDSA JWK", "EdDSA", jwk(ed, "")},
		{"RS256 PKCS#1", "RS256", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rs)})},
		{"RS256 JWK", "RS256", jwk(rs, "RS256")},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key, err := nvclient.ParseKey(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if key.Algorithm() != tc.alg || key.KeyID() == "" {
				t.Fatalf("alg %s kid %q, want %s and a kid", key.Algorithm(), key.KeyID(), tc.alg)
			}
			jwks, err := key.PublicJWKS()
			if err != nil {
				t.Fatal(err)
			}
			id := "key-test-" + string(rune('a'+i))
			err = sb.Store.PutClient(ctx, nv.Client{
				ID: id, RedirectURIs: []string{"http://127.0.0.1:9/cb"}, JWKS: jwks,
				Scopes: append([]string(nil), nv.Scopes...), Purposes: []string{nv.AnyPurpose}, CreatedAt: time.Now(),
			})
			if err != nil {
				t.Fatal(err)
			}
			c, err := nvclient.New(ctx, nvclient.Config{Issuer: sb.Issuer, ClientID: id, RedirectURI: "http://127.0.0.1:9/cb", Key: key})
			if err != nil {
				t.Fatal(err)
			}
			for _, signed := range []bool{false, true} {
				tok := authorize(t, c, nvclient.AuthRequest{SignedRequest: signed}, "+34600000003")
				if res, err := c.Verify(ctx, tok.AccessToken, nvclient.PhoneNumber("+34600000003")); err != nil || !res.Verified {
					t.Errorf("signed=%v: %+v %v", signed, res, err)
				}
			}
		})
	}

	for name, data := range map[string][]byte{
		"public JWK":  mustJSON(t, jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "x"}),
		"HMAC JWK":    mustJSON(t, jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "x", Algorithm: "HS256"}),
		"P-384":       pkcs8(mustP384(t)),
		"garbage":     []byte("not a key"),
		"certificate": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}),
		"wrong alg":   jwk(ec, "RS256"),
	} {
		if _, err := nvclient.ParseKey(data); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func mustHash(t *testing.T, n string) string {
	t.Helper()
	h, err := nvclient.HashPhoneNumber(n)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func mustFail(_ *nvclient.Token, err error) error { return err }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustP384(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestHashPhoneNumber(t *testing.T) {
	// CAMARA's test vector.
	if h := mustHash(t, "+123456789"); h != "b49f9168e8a886ffd61a090b51a26e117717f5f6fa804af49ea67043a2bfa4f0" {
		t.Errorf("hash = %s", h)
	}
	if _, err := nvclient.HashPhoneNumber("123456789"); err == nil {
		t.Error("a number without + was hashed")
	}
}
