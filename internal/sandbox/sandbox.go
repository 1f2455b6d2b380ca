// Package sandbox is numbergate's offline playground for app developers: a
// demo client with its private key written to disk, device numbers
// simulated through login_hint=tel:+E164, and a test-token minting endpoint
// for testers. Nothing here is wired into `numbergate serve`.
package sandbox

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/numbergate/numbergate/internal/api"
	"github.com/numbergate/numbergate/internal/nv"
)

// Demo client identity.
const (
	ClientID    = "sandbox-demo-app"
	RedirectURI = "http://127.0.0.1:9999/callback"
	// CredentialsFile is written under the data directory.
	CredentialsFile = "sandbox-client.json"
)

// Credentials is what DIR/sandbox-client.json holds: everything an app
// needs to run the flow against the sandbox.
type Credentials struct {
	Issuer      string          `json:"issuer"`
	ClientID    string          `json:"client_id"`
	RedirectURI string          `json:"redirect_uri"`
	PrivateJWK  json.RawMessage `json:"private_jwk"`
}

// EnsureDemoClient registers the demo client (onboarded for every scope
// the server offers and any dpv: purpose) and writes its credentials to
// dir. An existing key is kept, so the file stays valid across restarts.
func EnsureDemoClient(ctx context.Context, st nv.ClientStore, dir, issuer string) (Credentials, error) {
	path := filepath.Join(dir, CredentialsFile)
	var priv jose.JSONWebKey
	if data, err := os.ReadFile(path); err == nil {
		var old Credentials
		if json.Unmarshal(data, &old) == nil && priv.UnmarshalJSON(old.PrivateJWK) == nil && !priv.IsPublic() && priv.Valid() {
			// keep the key
		} else {
			priv = jose.JSONWebKey{}
		}
	}
	if priv.Key == nil {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return Credentials{}, err
		}
		kid := make([]byte, 9)
		_, _ = rand.Read(kid)
		priv = jose.JSONWebKey{Key: key, KeyID: base64.RawURLEncoding.EncodeToString(kid), Algorithm: string(jose.ES256), Use: "sig"}
	}
	privJSON, err := priv.MarshalJSON()
	if err != nil {
		return Credentials{}, err
	}
	pub := priv.Public()
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	if err != nil {
		return Credentials{}, err
	}
	err = st.PutClient(ctx, nv.Client{
		ID:           ClientID,
		RedirectURIs: []string{RedirectURI},
		JWKS:         jwks,
		Scopes:       append([]string(nil), nv.Scopes...),
		Purposes:     []string{nv.AnyPurpose},
		CreatedAt:    time.Now(),
	})
	if err != nil {
		return Credentials{}, fmt.Errorf("register the demo client: %w", err)
	}
	creds := Credentials{Issuer: issuer, ClientID: ClientID, RedirectURI: RedirectURI, PrivateJWK: privJSON}
	out, err := json.MarshalIndent(creds, "", "  ")
	if err != nil {
		return Credentials{}, err
	}
	if err := writePrivate(path, append(out, '\n')); err != nil {
		return Credentials{}, fmt.Errorf("write %s: %w", path, err)
	}
	return creds, nil
}

// writePrivate replaces path with data in a new file readable by its owner
// only: os.WriteFile would keep the mode of an existing file, and this one
// holds a private key (issue 6 item 14).
func writePrivate(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a successful rename there is nothing left to remove
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// tokenRequest is the body of POST /sandbox/tokens.
type tokenRequest struct {
	PhoneNumber *string `json:"phoneNumber"`
	Scope       *string `json:"scope"`
	ExpiresIn   *int    `json:"expiresIn"`
	AuthMethod  *string `json:"authMethod"`
}

// TokenHandler serves POST /sandbox/tokens: it mints an access token
// straight into the token store, for testers who want to call the API
// without running the authorization flow. "authMethod" other than
// "network" gives a token not obtained by network-based authentication;
// "expiresIn" <= 0 gives one that is already expired.
func TokenHandler(tokens nv.TokenStore, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			api.WriteError(w, nv.Errorf(nv.CodeMethodNotAllowed, "The requested method is not allowed on this resource; use POST."))
			return
		}
		if !jsonContentType(r.Header) {
			api.WriteError(w, nv.Errorf(nv.CodeUnsupportedMedia, "The request body must be sent with Content-Type: application/json."))
			return
		}
		req, err := parseTokenRequest(r)
		if err != nil {
			api.WriteError(w, nv.Errorf(nv.CodeInvalidArgument, "%s", err.Error()))
			return
		}
		value := make([]byte, 32)
		_, _ = rand.Read(value)
		tok := base64.RawURLEncoding.EncodeToString(value)
		t := now()
		at := nv.AccessToken{
			Hash:       nv.HashToken(tok),
			ClientID:   ClientID,
			MSISDN:     req.phone,
			Scopes:     req.scopes,
			Purpose:    "dpv:FraudPreventionAndDetection",
			AuthMethod: req.method,
			Source:     "sandbox",
			IssuedAt:   t,
			ExpiresAt:  t.Add(time.Duration(req.expiresIn) * time.Second),
		}
		if err := tokens.SaveToken(r.Context(), at); err != nil {
			api.WriteError(w, fmt.Errorf("sandbox: store the test token: %w", err))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "expires_in": max(req.expiresIn, 0)})
	})
}

// Bounds of expiresIn, in seconds: at most the token lifetime CAMARA
// allows; at least a day in the past (an expired token for testers).
const (
	MinExpiresIn = -86400
	maxExpiresIn = int(nv.MaxTokenLifetime / time.Second)
)

type mintRequest struct {
	phone     nv.PhoneNumber
	scopes    []string
	expiresIn int
	method    nv.AuthMethod
}

func parseTokenRequest(r *http.Request) (mintRequest, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 4<<10))
	if err != nil {
		return mintRequest{}, errors.New("the body must be a JSON object of at most 4 KiB")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req tokenRequest
	if err := dec.Decode(&req); err != nil {
		return mintRequest{}, fmt.Errorf("the body must be a JSON object with phoneNumber, scope, expiresIn and authMethod: %v", err)
	}
	if dec.More() {
		return mintRequest{}, errors.New("the body must hold a single JSON object")
	}
	var m mintRequest
	if req.PhoneNumber == nil {
		return m, errors.New("phoneNumber is required")
	}
	if m.phone, err = nv.ParsePhoneNumber(*req.PhoneNumber); err != nil {
		return m, errors.New("phoneNumber must be E.164 with a leading '+', e.g. +34600000000")
	}
	m.scopes = []string{nv.ScopeVerify, nv.ScopeDevicePhoneNumber}
	if req.Scope != nil {
		m.scopes = nil
		for _, s := range nv.SplitScope(*req.Scope) {
			if !slices.Contains(nv.Scopes, s) {
				return m, fmt.Errorf("scope %q is not offered; use any of %s", s, strings.Join(nv.Scopes, " "))
			}
			m.scopes = append(m.scopes, s)
		}
	}
	m.expiresIn = maxExpiresIn
	if req.ExpiresIn != nil {
		if *req.ExpiresIn > maxExpiresIn || *req.ExpiresIn < MinExpiresIn {
			return m, fmt.Errorf("expiresIn must be between %d and %d seconds (at most CAMARA's bound on Number Verification tokens; <= 0 mints an already expired token)", MinExpiresIn, maxExpiresIn)
		}
		m.expiresIn = *req.ExpiresIn
	}
	m.method = nv.AuthNetwork
	if req.AuthMethod != nil && *req.AuthMethod != string(nv.AuthNetwork) {
		m.method = nv.AuthOther
	}
	return m, nil
}

// jsonContentType reports whether h declares a JSON body, as the API
// requires: application/json, with at most charset=utf-8.
func jsonContentType(h http.Header) bool {
	values := h.Values("Content-Type")
	if len(values) != 1 {
		return false
	}
	mt, params, err := mime.ParseMediaType(values[0])
	if err != nil || mt != "application/json" {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}

// QuickStartVerifier is the PKCE code_verifier of the quick start's
// example URL (a fixed value is fine for a demo client in a sandbox).
const QuickStartVerifier = "numbergate-sandbox-quick-start-code-verifier-0123456789"

// QuickStartNumber is the device number the quick start's example simulates.
const QuickStartNumber = "+34600000001"

// QuickStartURL is the quick start's /authorize URL, percent-encoded so that
// it works as pasted (a raw '+' in a query string would arrive as a space).
func QuickStartURL(issuer string) string {
	sum := sha256.Sum256([]byte(QuickStartVerifier))
	params := [][2]string{
		{"response_type", "code"},
		{"client_id", ClientID},
		{"redirect_uri", RedirectURI},
		{"scope", "openid number-verification:verify dpv:FraudPreventionAndDetection"},
		{"state", "xyz"},
		{"nonce", "n"},
		{"code_challenge", base64.RawURLEncoding.EncodeToString(sum[:])},
		{"code_challenge_method", "S256"},
		{"login_hint", "tel:" + QuickStartNumber},
	}
	var b strings.Builder
	b.WriteString(issuer + "/authorize")
	for i, p := range params {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(p[0] + "=" + url.QueryEscape(p[1]))
	}
	return b.String()
}

// QuickStart is printed when the sandbox boots.
func QuickStart(issuer, dataDir, defaultNumber string) string {
	return fmt.Sprintf(`numbergate sandbox is running at %[1]s

  discovery     %[1]s/.well-known/openid-configuration
  demo client   %[2]s  (client_id %[3]s, redirect_uri %[4]s, private key inside)
  device number simulated with login_hint=tel:+E164 on /authorize (default %[5]s);
                in a URL the + is written %%2B: login_hint=tel:%%2B34600000001

Run the flow:
  1. The device opens (paste as is):
       curl -si '%[6]s' | grep -i '^location'
     -> 303 See Other, Location: %[4]s?code=...&iss=...&state=xyz
  2. POST %[1]s/token  (grant_type=authorization_code, code, redirect_uri=%[4]s,
          code_verifier=%[7]s,
          client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer,
          client_assertion=<ES256 JWT signed with the demo key: iss=sub=client_id, aud=%[1]s/token, exp, jti>)
  3. POST %[1]s/number-verification/v2/verify  {"phoneNumber": "%[8]s"}  with Authorization: Bearer <token>

Or skip 1-2 with a test token:
  curl -s %[1]s/sandbox/tokens -H 'Content-Type: application/json' \
       -d '{"phoneNumber": "%[8]s", "scope": "number-verification:verify"}'
`, issuer, filepath.Join(dataDir, CredentialsFile), ClientID, RedirectURI, defaultNumber, QuickStartURL(issuer), QuickStartVerifier, QuickStartNumber)
}
