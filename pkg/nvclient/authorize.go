package nvclient

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// API scopes of Number Verification v2.
const (
	ScopeVerify            = "number-verification:verify"
	ScopeDevicePhoneNumber = "number-verification:device-phone-number:read"
)

// AuthRequest says what an authorization asks for.
type AuthRequest struct {
	// Scopes are the API scopes (ScopeVerify, ScopeDevicePhoneNumber);
	// "openid" is always added. Default: ScopeVerify.
	Scopes []string
	// Purpose is exactly one W3C DPV purpose, with or without the "dpv:"
	// prefix, e.g. "FraudPreventionAndDetection". Required.
	Purpose string
	// LoginHint is passed as login_hint ("" for none). Production servers
	// ignore it; the numbergate sandbox takes "tel:+E164" as the simulated
	// device's number.
	LoginHint string
	// SignedRequest sends the parameters in a signed request object
	// (RFC 9101 `request`), repeated in plain form as the CAMARA profile
	// asks.
	SignedRequest bool
}

// Pending is one authorization in progress: what the app must keep (in
// the user's server-side session, never in a place the user can edit)
// between the redirect to AuthURL and the callback. It is
// JSON-serialisable.
type Pending struct {
	AuthURL      string    `json:"auth_url"`
	State        string    `json:"state"`
	Nonce        string    `json:"nonce"`
	CodeVerifier string    `json:"code_verifier"`
	Scope        string    `json:"scope"`
	CreatedAt    time.Time `json:"created_at"`
}

// AuthorizationURL builds the /authorize URL the device must open (a
// redirect from the app's page), with a fresh state, nonce and PKCE S256
// verifier kept in the returned Pending.
func (c *Client) AuthorizationURL(req AuthRequest) (*Pending, error) {
	scope, err := buildScope(req)
	if err != nil {
		return nil, err
	}
	p := &Pending{
		State:        randomString(),
		Nonce:        randomString(),
		CodeVerifier: randomString(),
		Scope:        scope,
		CreatedAt:    c.now(),
	}
	sum := sha256.Sum256([]byte(p.CodeVerifier))
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {c.cfg.ClientID},
		"redirect_uri":          {c.cfg.RedirectURI},
		"scope":                 {scope},
		"state":                 {p.State},
		"nonce":                 {p.Nonce},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	if req.LoginHint != "" {
		q.Set("login_hint", req.LoginHint)
	}
	if req.SignedRequest {
		obj, err := c.requestObject(q)
		if err != nil {
			return nil, err
		}
		// The profile asks for the plain copies of these four; the
		// rest travels only signed.
		q = url.Values{
			"response_type": {"code"},
			"client_id":     {c.cfg.ClientID},
			"redirect_uri":  {c.cfg.RedirectURI},
			"scope":         {scope},
			"request":       {obj},
		}
	}
	sep := "?"
	if strings.Contains(c.disc.AuthorizationEndpoint, "?") {
		sep = "&"
	}
	p.AuthURL = c.disc.AuthorizationEndpoint + sep + q.Encode()
	return p, nil
}

func buildScope(req AuthRequest) (string, error) {
	purpose := strings.TrimPrefix(strings.TrimSpace(req.Purpose), "dpv:")
	if purpose == "" || strings.ContainsAny(purpose, " \t") {
		return "", errors.New("nvclient: AuthRequest.Purpose must be exactly one DPV purpose, e.g. FraudPreventionAndDetection")
	}
	scopes := req.Scopes
	if len(scopes) == 0 {
		scopes = []string{ScopeVerify}
	}
	out := []string{"openid"}
	for _, s := range scopes {
		switch {
		case s == "openid":
			continue
		case strings.HasPrefix(s, "dpv:"):
			return "", errors.New("nvclient: put the purpose in AuthRequest.Purpose, not in Scopes (exactly one purpose per request)")
		case s == "" || strings.ContainsAny(s, " \t"):
			return "", fmt.Errorf("nvclient: bad scope %q", s)
		}
		out = append(out, s)
	}
	return strings.Join(append(out, "dpv:"+purpose), " "), nil
}

// requestObject signs the authorization parameters (RFC 9101) with the
// claims CAMARA asks for: iss, aud, iat, exp, jti.
func (c *Client) requestObject(q url.Values) (string, error) {
	now := c.now()
	claims := map[string]any{
		"iss": c.cfg.ClientID,
		"aud": c.cfg.Issuer,
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(2 * time.Minute).Unix(),
		"jti": randomString(),
	}
	for k, v := range q {
		claims[k] = v[0]
	}
	signer, err := jose.NewSigner(c.cfg.Key.joseKey(), (&jose.SignerOptions{}).WithType("oauth-authz-req+jwt"))
	if err != nil {
		return "", fmt.Errorf("nvclient: request object: %w", err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("nvclient: request object: %w", err)
	}
	return s, nil
}

// Callback handles the redirect back to the app: it checks that state is
// the pending one (ErrStateMismatch otherwise, before anything else), turns
// an error redirect (e.g. access_denied: the network did not recognise the
// device) into an *Error with Op "authorize", and exchanges the code.
// query is the callback request's URL query.
func (c *Client) Callback(ctx context.Context, p *Pending, query url.Values) (*Token, error) {
	if p == nil || p.State == "" {
		return nil, ErrStateMismatch
	}
	if subtle.ConstantTimeCompare([]byte(query.Get("state")), []byte(p.State)) != 1 {
		return nil, ErrStateMismatch
	}
	iss, hasIss := query["iss"]
	switch {
	case hasIss && (len(iss) != 1 || iss[0] != c.cfg.Issuer):
		return nil, ErrIssuerMismatch
	case !hasIss && c.disc.AuthorizationResponseIssParameterSupported:
		// RFC 9207 2.4: the provider always sends iss, so a callback
		// without it did not come from the provider.
		return nil, ErrIssuerMismatch
	}
	if e := query.Get("error"); e != "" {
		return nil, &Error{Op: "authorize", Code: e, Message: query.Get("error_description")}
	}
	code := query.Get("code")
	if code == "" {
		return nil, ErrNoCode
	}
	return c.Exchange(ctx, p, code)
}
