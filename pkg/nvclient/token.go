package nvclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Token is the answer of /token: a single-use access token for one API
// call (at most 300 s) and, with openid, a verified ID token.
type Token struct {
	AccessToken string
	TokenType   string
	ExpiresIn   int
	// ExpiresAt is when the access token expires, by the client's clock.
	ExpiresAt time.Time
	Scope     string
	// IDToken is the raw ID token ("" without openid); IDClaims are its
	// claims, verified (signature with the provider's JWKS, iss, aud,
	// exp, nonce).
	IDToken  string
	IDClaims *IDClaims
}

// String shows the token without its secrets (the access token masked,
// the ID token left out), so that printing or logging a *Token with %v
// never leaks a usable credential.
func (t *Token) String() string {
	if t == nil {
		return "<nil>"
	}
	sub := ""
	if t.IDClaims != nil {
		sub = t.IDClaims.Subject
	}
	return fmt.Sprintf("nvclient.Token{access_token: %s, token_type: %s, expires_in: %d, scope: %q, sub: %q}",
		maskToken(t.AccessToken), t.TokenType, t.ExpiresIn, t.Scope, sub)
}

// LogValue is what log/slog records for a *Token: String.
func (t *Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

func maskToken(s string) string {
	if len(s) <= 8 {
		return "****"
	}
	return fmt.Sprintf("%s…(%d chars)", s[:4], len(s))
}

// IDClaims are the ID token's claims. Subject is a pairwise pseudonym,
// never the phone number.
type IDClaims struct {
	Issuer   string         `json:"iss"`
	Subject  string         `json:"sub"`
	Audience []string       `json:"-"`
	IssuedAt time.Time      `json:"-"`
	Expiry   time.Time      `json:"-"`
	Nonce    string         `json:"nonce"`
	AuthTime time.Time      `json:"-"`
	ACR      string         `json:"acr,omitempty"`
	AMR      []string       `json:"amr,omitempty"`
	Raw      map[string]any `json:"-"`
}

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Exchange redeems an authorization code at /token with a private_key_jwt
// client assertion and the pending PKCE verifier. Prefer Callback, which
// checks state first.
func (c *Client) Exchange(ctx context.Context, p *Pending, code string) (*Token, error) {
	assertion, err := c.clientAssertion()
	if err != nil {
		return nil, err
	}
	form := url.Values{
		"grant_type":            {"authorization_code"},
		"code":                  {code},
		"redirect_uri":          {c.cfg.RedirectURI},
		"client_id":             {c.cfg.ClientID},
		"code_verifier":         {p.CodeVerifier},
		"client_assertion_type": {assertionType},
		"client_assertion":      {assertion},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.disc.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("nvclient: token: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("nvclient: token: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("nvclient: token: %w", err)
	}
	tr, err := parseTokenResponse(resp.StatusCode, body)
	if err != nil {
		if e, ok := err.(*Error); ok {
			e.RetryAfter = retryAfter(resp.Header, c.now())
		}
		return nil, err
	}
	t := &Token{
		AccessToken: tr.AccessToken,
		TokenType:   tr.TokenType,
		ExpiresIn:   tr.ExpiresIn,
		ExpiresAt:   c.now().Add(time.Duration(tr.ExpiresIn) * time.Second),
		Scope:       tr.Scope,
		IDToken:     tr.IDToken,
	}
	if tr.IDToken != "" {
		claims, err := c.verifyIDToken(ctx, tr.IDToken, p.Nonce)
		if err != nil {
			return nil, err
		}
		t.IDClaims = claims
	} else if slices.Contains(strings.Fields(p.Scope), "openid") {
		return nil, &Error{Op: "token", Status: resp.StatusCode, Code: "invalid_id_token", Message: "openid was requested but no ID token was returned"}
	}
	return t, nil
}

// tokenResponse is the JSON of /token (RFC 6749 5.1, 5.2).
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
	IDToken     string `json:"id_token"`
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// parseTokenResponse turns the provider's answer into a response or an
// *Error (Op "token") carrying the status and the OAuth error.
func parseTokenResponse(status int, body []byte) (tokenResponse, error) {
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return tr, &Error{Op: "token", Status: status, Code: CodeServerError, Message: "the token response is not JSON"}
	}
	if status != http.StatusOK || tr.Error != "" {
		code := tr.Error
		if code == "" {
			code = CodeServerError
		}
		return tr, &Error{Op: "token", Status: status, Code: code, Message: tr.Description}
	}
	if tr.AccessToken == "" {
		return tr, &Error{Op: "token", Status: status, Code: CodeServerError, Message: "the token response has no access_token"}
	}
	if tr.ExpiresIn < 0 {
		return tr, &Error{Op: "token", Status: status, Code: CodeServerError, Message: "the token response has a negative expires_in"}
	}
	return tr, nil
}

// clientAssertion is a fresh private_key_jwt (RFC 7523, CAMARA ICM): iss =
// sub = client_id, aud = the token endpoint, 60 s lifetime, unique jti.
func (c *Client) clientAssertion() (string, error) {
	now := c.now()
	claims := jwt.Claims{
		Issuer:   c.cfg.ClientID,
		Subject:  c.cfg.ClientID,
		Audience: jwt.Audience{c.disc.TokenEndpoint},
		ID:       randomString(),
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(60 * time.Second)),
	}
	signer, err := jose.NewSigner(c.cfg.Key.joseKey(), (&jose.SignerOptions{}).WithType("client-authentication+jwt"))
	if err != nil {
		return "", fmt.Errorf("nvclient: client assertion: %w", err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("nvclient: client assertion: %w", err)
	}
	return s, nil
}

func (c *Client) verifyIDToken(ctx context.Context, raw, nonce string) (*IDClaims, error) {
	fail := func(msg string) error {
		return &Error{Op: "token", Code: "invalid_id_token", Message: msg}
	}
	algs := []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}
	if len(c.disc.IDTokenSigningAlgValuesSupported) > 0 {
		algs = algs[:0]
		for _, a := range c.disc.IDTokenSigningAlgValuesSupported {
			if a != "none" && !strings.HasPrefix(a, "HS") {
				algs = append(algs, jose.SignatureAlgorithm(a))
			}
		}
	}
	tok, err := jwt.ParseSigned(raw, algs)
	if err != nil {
		return nil, fail("the ID token is not a JWS with an accepted algorithm: " + err.Error())
	}
	if len(tok.Headers) != 1 {
		return nil, fail("the ID token must have one signature")
	}
	kid := tok.Headers[0].KeyID
	keys := c.key(kid)
	if len(keys) == 0 {
		// The provider may have rotated its key since New.
		if err := c.refreshKeys(ctx); err != nil {
			return nil, err
		}
		keys = c.key(kid)
	}
	if len(keys) == 0 {
		return nil, fail("the ID token's kid is not in the provider's JWKS")
	}
	var std jwt.Claims
	var all map[string]any
	if err := tok.Claims(keys[0].Key, &std, &all); err != nil {
		return nil, fail("the ID token's signature does not verify")
	}
	if err := std.ValidateWithLeeway(jwt.Expected{
		Issuer:      c.cfg.Issuer,
		AnyAudience: jwt.Audience{c.cfg.ClientID},
		Time:        c.now(),
	}, 30*time.Second); err != nil {
		return nil, fail("the ID token's claims are wrong: " + err.Error())
	}
	if std.Expiry == nil {
		return nil, fail("the ID token has no exp")
	}
	got, _ := all["nonce"].(string)
	if got != nonce {
		return nil, fail("the ID token's nonce is not the one sent")
	}
	out := &IDClaims{Issuer: std.Issuer, Subject: std.Subject, Audience: std.Audience, Nonce: got, Raw: all}
	out.Expiry = std.Expiry.Time()
	if std.IssuedAt != nil {
		out.IssuedAt = std.IssuedAt.Time()
	}
	if at, ok := all["auth_time"].(float64); ok {
		out.AuthTime = time.Unix(int64(at), 0)
	}
	out.ACR, _ = all["acr"].(string)
	if amr, ok := all["amr"].([]any); ok {
		for _, a := range amr {
			if s, ok := a.(string); ok {
				out.AMR = append(out.AMR, s)
			}
		}
	}
	return out, nil
}
