package nvclient

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Config is what an app needs to talk to one numbergate (or any CAMARA
// Number Verification provider following the same profile).
type Config struct {
	// Issuer is the provider's issuer URL, e.g. http://127.0.0.1:8080.
	Issuer string
	// ClientID and RedirectURI are the ones the operator onboarded.
	ClientID    string
	RedirectURI string
	// Key signs the private_key_jwt assertions and request objects.
	Key *Key
	// HTTPClient is used for every call (default: a client with a 15 s
	// timeout). It must not follow redirects to the app; it never gets any.
	HTTPClient *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Discovery is the part of the provider's OpenID configuration the client
// uses.
type Discovery struct {
	Issuer                           string   `json:"issuer"`
	AuthorizationEndpoint            string   `json:"authorization_endpoint"`
	TokenEndpoint                    string   `json:"token_endpoint"`
	JWKSURI                          string   `json:"jwks_uri"`
	ScopesSupported                  []string `json:"scopes_supported"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	CodeChallengeMethodsSupported    []string `json:"code_challenge_methods_supported"`
	RequestParameterSupported        bool     `json:"request_parameter_supported"`
	// AuthorizationResponseIssParameterSupported (RFC 9207): when true,
	// Callback requires the iss parameter and checks it.
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported"`
}

// Client runs the CAMARA frontend flow for one onboarded app and calls the
// Number Verification API. It holds no per-user state: the app keeps each
// user's Pending between the redirect and the callback. Safe for
// concurrent use.
type Client struct {
	cfg  Config
	http *http.Client
	now  func() time.Time
	disc Discovery

	mu   sync.Mutex
	jwks *jose.JSONWebKeySet
}

// New fetches the provider's discovery document and its JWKS and returns a
// client. The issuer in the document must be cfg.Issuer exactly.
func New(ctx context.Context, cfg Config) (*Client, error) {
	cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("nvclient: Config.Issuer is required")
	case cfg.ClientID == "":
		return nil, errors.New("nvclient: Config.ClientID is required")
	case cfg.RedirectURI == "":
		return nil, errors.New("nvclient: Config.RedirectURI is required")
	case cfg.Key == nil:
		return nil, errors.New("nvclient: Config.Key is required (the client's private key)")
	}
	c := &Client{cfg: cfg, http: cfg.HTTPClient, now: cfg.Now}
	if c.http == nil {
		c.http = &http.Client{Timeout: 15 * time.Second}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if err := c.getJSON(ctx, cfg.Issuer+"/.well-known/openid-configuration", &c.disc); err != nil {
		return nil, err
	}
	if c.disc.Issuer != cfg.Issuer {
		return nil, &Error{Op: "discovery", Code: "issuer_mismatch",
			Message: fmt.Sprintf("the discovery document's issuer is %q, the client was configured with %q", c.disc.Issuer, cfg.Issuer)}
	}
	if c.disc.AuthorizationEndpoint == "" || c.disc.TokenEndpoint == "" || c.disc.JWKSURI == "" {
		return nil, &Error{Op: "discovery", Code: "incomplete_discovery", Message: "authorization_endpoint, token_endpoint and jwks_uri are required"}
	}
	if err := c.refreshKeys(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// refreshKeys fetches the provider's JWKS (at New, and again when an ID
// token names a key the client has not seen: the provider rotated).
func (c *Client) refreshKeys(ctx context.Context) error {
	var set jose.JSONWebKeySet
	if err := c.getJSON(ctx, c.disc.JWKSURI, &set); err != nil {
		return err
	}
	c.mu.Lock()
	c.jwks = &set
	c.mu.Unlock()
	return nil
}

// key returns the provider's public keys with kid.
func (c *Client) key(kid string) []jose.JSONWebKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.jwks.Key(kid)
}

// Discovery returns the provider's configuration as fetched by New.
func (c *Client) Discovery() Discovery { return c.disc }

func (c *Client) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("nvclient: discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("nvclient: discovery: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("nvclient: discovery: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return &Error{Op: "discovery", Status: resp.StatusCode, Code: "http_error", Message: "GET " + url}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("nvclient: discovery: %s is not JSON: %w", url, err)
	}
	return nil
}

// Credentials is the content of the sandbox's sandbox-client.json.
type Credentials struct {
	Issuer      string          `json:"issuer"`
	ClientID    string          `json:"client_id"`
	RedirectURI string          `json:"redirect_uri"`
	PrivateJWK  json.RawMessage `json:"private_jwk"`
}

// ReadCredentials reads a sandbox-client.json (what `numbergate sandbox`
// writes into its data directory) into a Config.
func ReadCredentials(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("nvclient: %w", err)
	}
	var cr Credentials
	if err := json.Unmarshal(data, &cr); err != nil {
		return Config{}, fmt.Errorf("nvclient: %s: %w", path, err)
	}
	if cr.Issuer == "" || cr.ClientID == "" || cr.RedirectURI == "" || len(cr.PrivateJWK) == 0 {
		return Config{}, fmt.Errorf("nvclient: %s: issuer, client_id, redirect_uri and private_jwk are required", path)
	}
	key, err := ParseKey(cr.PrivateJWK)
	if err != nil {
		return Config{}, fmt.Errorf("%w (in %s)", err, path)
	}
	return Config{Issuer: cr.Issuer, ClientID: cr.ClientID, RedirectURI: cr.RedirectURI, Key: key}, nil
}

// randomString is 256 bits of entropy, base64url (for state, nonce, PKCE
// verifier, jti).
func randomString() string {
	return rand.Text() + rand.Text()
}
