package loadgen

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/time/rate"
)

// DefaultScope is what Flow asks for when Flow.Scope is empty.
const DefaultScope = "openid number-verification:verify dpv:FraudPreventionAndDetection"

// Flow steps, as StepError.Step names them.
const (
	StepAuthorize = "authorize"
	StepToken     = "token"
	StepVerify    = "verify"
)

// Client is what an onboarded app backend holds.
type Client struct {
	// Issuer is the server's base URL without a trailing slash, e.g.
	// "http://127.0.0.1:8080"; /authorize, /token, /jwks and the API are
	// under it.
	Issuer      string
	ID          string
	RedirectURI string
	// Key is the client's private ES256 key, with its kid (the public half
	// is in the JWKS the client was onboarded with).
	Key jose.JSONWebKey
}

// Flow runs complete Number Verification flows for one client. It is safe
// for concurrent use once built; set the fields before the first Run.
type Flow struct {
	Client Client
	// Scope requested at /authorize (DefaultScope when empty). It must
	// hold number-verification:verify for Run's verify step.
	Scope string
	// HTTP is the app backend's client for /token, /jwks and the API (a
	// keep-alive client that never follows redirects when nil).
	HTTP *http.Client
	// Now is the clock for assertion times (time.Now when nil).
	Now func() time.Time

	once    sync.Once
	signer  jose.Signer
	initErr error

	jwksMu sync.Mutex
	jwks   *jose.JSONWebKeySet
}

// Device is the subscriber's phone as /authorize sees it.
type Device struct {
	// MSISDN is the number the network is expected to identify, in E.164
	// with "+"; Run checks /verify says true for it.
	MSISDN string
	// Source is the local address /authorize is sent from (a loopback
	// address the server's static map or a RADIUS session maps to MSISDN);
	// the zero Addr lets the system choose.
	Source netip.Addr
	// LoginHint is sent as login_hint when not empty (the sandbox
	// identifies the device from "tel:+E164"; serve ignores it).
	LoginHint string

	once   sync.Once
	client *http.Client
}

// http returns the device's HTTP client: connections bound to Source,
// redirects not followed (the redirect goes to the app, which is not
// running).
func (d *Device) http() *http.Client {
	d.once.Do(func() {
		dialer := &net.Dialer{Timeout: 5 * time.Second}
		if d.Source.IsValid() {
			dialer.LocalAddr = &net.TCPAddr{IP: d.Source.AsSlice()}
		}
		d.client = &http.Client{
			Transport: &http.Transport{
				DialContext:         dialer.DialContext,
				MaxIdleConnsPerHost: 4,
				IdleConnTimeout:     30 * time.Second,
			},
			CheckRedirect: noRedirect,
			Timeout:       30 * time.Second,
		}
	})
	return d.client
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// defaultHTTP is the app backend client shared by every Flow without one.
var defaultHTTP = NewHTTPClient()

// NewHTTPClient returns an HTTP client for load: no proxy, a large idle
// pool to one host, redirects not followed (the flow reads them).
func NewHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     30 * time.Second,
		},
		CheckRedirect: noRedirect,
		Timeout:       30 * time.Second,
	}
}

func (f *Flow) httpClient() *http.Client {
	if f.HTTP != nil {
		return f.HTTP
	}
	return defaultHTTP
}

func (f *Flow) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func (f *Flow) scope() string {
	if f.Scope == "" {
		return DefaultScope
	}
	return f.Scope
}

func (f *Flow) init() error {
	f.once.Do(func() {
		if f.Client.Issuer == "" || f.Client.ID == "" || f.Client.RedirectURI == "" {
			f.initErr = errors.New("loadgen: Client needs Issuer, ID and RedirectURI")
			return
		}
		if f.Client.Key.IsPublic() || !f.Client.Key.Valid() {
			f.initErr = errors.New("loadgen: Client.Key must be a valid private key")
			return
		}
		opts := (&jose.SignerOptions{}).WithType("client-authentication+jwt")
		f.signer, f.initErr = jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: f.Client.Key}, opts)
	})
	return f.initErr
}

// StepError is a flow step that failed: a transport error, or an answer
// that is not the one a correct server gives.
type StepError struct {
	Step   string // StepAuthorize, StepToken or StepVerify
	Status int    // HTTP status, 0 when no answer came
	// Code is the OAuth error (/authorize, /token) or CAMARA code (API)
	// the server answered, if any.
	Code   string
	Detail string
	Err    error // the transport error, if any
}

func (e *StepError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", e.Step)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": status %d", e.Status)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *StepError) Unwrap() error { return e.Err }

// Answered reports whether the server answered (as opposed to a transport
// error: refused, reset, timed out).
func (e *StepError) Answered() bool { return e.Status != 0 }

// Result is what one flow did and what the server acknowledged. Fields are
// filled as the steps complete, so a failed Run still tells how far the
// server got.
type Result struct {
	// Code and Verifier came from /authorize (Code "" if it gave none).
	Code, Verifier string
	// Assertion is the client assertion sent to /token, JTI its jti.
	Assertion, JTI string
	// Redeemed is true once /token answered 200: the code is redeemed and
	// the jti consumed for good.
	Redeemed bool
	// AccessToken is the token /token issued.
	AccessToken string
	// Spent is true once /verify answered 200: the token is used up.
	Spent bool
	// Latency of each step that was answered.
	Authorize, Token, Verify time.Duration
}

// Run does one complete flow for d: authorize, token, verify. A wrong
// answer at any step is a *StepError.
func (f *Flow) Run(ctx context.Context, d *Device) (Result, error) {
	var res Result
	a, err := f.Authorize(ctx, d)
	res.Code, res.Verifier, res.Authorize = a.Code, a.Verifier, a.Latency
	if err != nil {
		return res, err
	}
	assertion, jti, err := f.Assertion()
	if err != nil {
		return res, &StepError{Step: StepToken, Err: err}
	}
	res.Assertion, res.JTI = assertion, jti
	t0 := time.Now()
	tok, err := f.Exchange(ctx, a.Code, a.Verifier, assertion)
	if err != nil {
		return res, err
	}
	res.Token = time.Since(t0)
	if tok.Status != http.StatusOK {
		return res, &StepError{Step: StepToken, Status: tok.Status, Code: tok.Error, Detail: tok.Description}
	}
	res.Redeemed = true
	res.AccessToken = tok.AccessToken
	if err := f.checkToken(ctx, tok, a, d); err != nil {
		var unanswered *jwksUnanswered
		if errors.As(err, &unanswered) {
			// The token was answered, but the /jwks needed to check it
			// was not (refused, reset: a server stopping): not an answer
			// at all, so not a wrong one. The code is redeemed all the same.
			return res, &StepError{Step: StepToken, Detail: "checking the id_token", Err: unanswered.err}
		}
		return res, &StepError{Step: StepToken, Status: tok.Status, Detail: err.Error()}
	}
	t0 = time.Now()
	v, err := f.Verify(ctx, tok.AccessToken, d.MSISDN)
	if err != nil {
		return res, err
	}
	res.Verify = time.Since(t0)
	if v.Status != http.StatusOK {
		return res, &StepError{Step: StepVerify, Status: v.Status, Code: v.Code, Detail: v.Message}
	}
	res.Spent = true
	if v.Verified == nil || !*v.Verified {
		return res, &StepError{Step: StepVerify, Status: v.Status, Detail: "devicePhoneNumberVerified is not true for the device's own number"}
	}
	return res, nil
}

// Authorization is what /authorize gave the device.
type Authorization struct {
	Code, Verifier, State, Nonce string
	Latency                      time.Duration
}

// Authorize sends the device to /authorize with PKCE (S256) and checks the
// redirect back: to the client's redirect URI, with the state, the issuer
// (RFC 9207) and a code. Any other answer is a *StepError.
func (f *Flow) Authorize(ctx context.Context, d *Device) (Authorization, error) {
	if err := f.init(); err != nil {
		return Authorization{}, &StepError{Step: StepAuthorize, Err: err}
	}
	a := Authorization{Verifier: rand.Text() + rand.Text(), State: "st-" + rand.Text()[:10], Nonce: "n-" + rand.Text()[:10]}
	sum := sha256.Sum256([]byte(a.Verifier))
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {f.Client.ID},
		"redirect_uri":          {f.Client.RedirectURI},
		"scope":                 {f.scope()},
		"state":                 {a.State},
		"nonce":                 {a.Nonce},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	if d.LoginHint != "" {
		q.Set("login_hint", d.LoginHint)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.Client.Issuer+"/authorize?"+q.Encode(), nil)
	if err != nil {
		return a, &StepError{Step: StepAuthorize, Err: err}
	}
	t0 := time.Now()
	resp, err := d.http().Do(req)
	if err != nil {
		return a, &StepError{Step: StepAuthorize, Err: err}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	a.Latency = time.Since(t0)
	if err != nil {
		return a, &StepError{Step: StepAuthorize, Status: resp.StatusCode, Err: err}
	}
	fail := func(code, detail string) (Authorization, error) {
		return a, &StepError{Step: StepAuthorize, Status: resp.StatusCode, Code: code, Detail: detail}
	}
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		return fail("", "no redirect: "+snippet(body))
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Scheme == "" {
		return fail("", "bad Location header")
	}
	got := loc.Query()
	base := *loc
	base.RawQuery, base.Fragment = "", ""
	if base.String() != f.Client.RedirectURI {
		return fail("", "redirected somewhere else than the client's redirect_uri")
	}
	if e := got.Get("error"); e != "" {
		return fail(e, got.Get("error_description"))
	}
	if got.Get("state") != a.State {
		return fail("", "state not passed back")
	}
	if got.Get("iss") != f.Client.Issuer {
		return fail("", "iss in the redirect is not the issuer")
	}
	a.Code = got.Get("code")
	if a.Code == "" {
		return fail("", "redirect without a code")
	}
	return a, nil
}

// Assertion signs a fresh private_key_jwt client assertion (ES256, typ
// client-authentication+jwt, aud the token endpoint, 60 s lifetime) and
// returns it with its jti.
func (f *Flow) Assertion() (assertion, jti string, err error) {
	if err := f.init(); err != nil {
		return "", "", err
	}
	now := f.now()
	jti = rand.Text()
	c := jwt.Claims{
		Issuer:   f.Client.ID,
		Subject:  f.Client.ID,
		Audience: jwt.Audience{f.Client.Issuer + "/token"},
		ID:       jti,
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(60 * time.Second)),
	}
	assertion, err = jwt.Signed(f.signer).Claims(c).Serialize()
	if err != nil {
		return "", "", fmt.Errorf("loadgen: sign the client assertion: %w", err)
	}
	return assertion, jti, nil
}

// TokenAnswer is the raw answer of /token.
type TokenAnswer struct {
	Status       int    `json:"-"`
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
	Error        string `json:"error"`
	Description  string `json:"error_description"`
}

// Exchange posts the code to /token with the given assertion and returns
// the server's answer as it is, whatever its status. Only a transport
// failure or a body that is not JSON is an error (a *StepError).
func (f *Flow) Exchange(ctx context.Context, code, verifier, assertion string) (TokenAnswer, error) {
	form := url.Values{
		"grant_type":            {"authorization_code"},
		"code":                  {code},
		"redirect_uri":          {f.Client.RedirectURI},
		"client_id":             {f.Client.ID},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
	if verifier != "" {
		form.Set("code_verifier", verifier)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.Client.Issuer+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		return TokenAnswer{}, &StepError{Step: StepToken, Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := f.httpClient().Do(req)
	if err != nil {
		return TokenAnswer{}, &StepError{Step: StepToken, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return TokenAnswer{Status: resp.StatusCode}, &StepError{Step: StepToken, Status: resp.StatusCode, Err: err}
	}
	var t TokenAnswer
	if err := json.Unmarshal(body, &t); err != nil {
		return TokenAnswer{Status: resp.StatusCode}, &StepError{Step: StepToken, Status: resp.StatusCode, Detail: "answer is not JSON: " + snippet(body)}
	}
	t.Status = resp.StatusCode
	return t, nil
}

// checkToken checks a 200 answer of /token: a bearer token for at most
// 300 s, no refresh token, and an ID token signed by a key the server
// publishes, for this client, with the nonce, whose sub is not the number.
func (f *Flow) checkToken(ctx context.Context, t TokenAnswer, a Authorization, d *Device) error {
	switch {
	case t.AccessToken == "":
		return errors.New("no access_token")
	case !strings.EqualFold(t.TokenType, "Bearer"):
		return fmt.Errorf("token_type %q, want Bearer", t.TokenType)
	case t.ExpiresIn <= 0 || t.ExpiresIn > 300:
		return fmt.Errorf("expires_in %d, want 1..300", t.ExpiresIn)
	case t.RefreshToken != "":
		return errors.New("a refresh token was issued")
	case t.IDToken == "":
		return errors.New("no id_token")
	}
	tok, err := jwt.ParseSigned(t.IDToken, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(tok.Headers) != 1 {
		return fmt.Errorf("id_token: %v", err)
	}
	key, err := f.serverKey(ctx, tok.Headers[0].KeyID)
	if err != nil {
		return err
	}
	var c struct {
		jwt.Claims
		Nonce string `json:"nonce"`
	}
	if err := tok.Claims(key, &c); err != nil {
		return fmt.Errorf("id_token signature: %v", err)
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: f.Client.Issuer, AnyAudience: jwt.Audience{f.Client.ID}, Time: f.now()}, 5*time.Second); err != nil {
		return fmt.Errorf("id_token claims: %v", err)
	}
	if c.Nonce != a.Nonce {
		return errors.New("id_token nonce is not the one sent")
	}
	if digits := strings.TrimPrefix(d.MSISDN, "+"); c.Subject == "" || (digits != "" && strings.Contains(c.Subject, digits)) {
		return errors.New("id_token sub is empty or carries the number")
	}
	return nil
}

// serverKey returns the server's published key kid, fetching /jwks on
// first use and again when the kid is unknown (a rotation).
func (f *Flow) serverKey(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	f.jwksMu.Lock()
	defer f.jwksMu.Unlock()
	for range 2 {
		if f.jwks != nil {
			if ks := f.jwks.Key(kid); len(ks) == 1 && ks[0].IsPublic() {
				return &ks[0], nil
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.Client.Issuer+"/jwks", nil)
		if err != nil {
			return nil, err
		}
		resp, err := f.httpClient().Do(req)
		if err != nil {
			return nil, &jwksUnanswered{err: fmt.Errorf("fetch jwks: %w", err)}
		}
		var set jose.JSONWebKeySet
		err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			return nil, fmt.Errorf("fetch jwks: status %d: %v", resp.StatusCode, err)
		}
		f.jwks = &set
	}
	return nil, fmt.Errorf("id_token signed with kid %q, which /jwks does not publish", kid)
}

// jwksUnanswered is a /jwks fetch that got no answer (a transport error).
type jwksUnanswered struct{ err error }

func (e *jwksUnanswered) Error() string { return e.err.Error() }
func (e *jwksUnanswered) Unwrap() error { return e.err }

// APIAnswer is the raw answer of a Number Verification API call.
type APIAnswer struct {
	Status int
	// Verified is devicePhoneNumberVerified, when the answer has it.
	Verified *bool
	// Code and Message are the CAMARA error body's, when there is one.
	Code, Message string
}

// Verify posts {"phoneNumber": msisdn} to /number-verification/v2/verify
// with the bearer token and returns the answer as it is. Only a transport
// failure or a body that is not JSON is an error (a *StepError).
func (f *Flow) Verify(ctx context.Context, token, msisdn string) (APIAnswer, error) {
	body, _ := json.Marshal(map[string]string{"phoneNumber": msisdn})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.Client.Issuer+"/number-verification/v2/verify", strings.NewReader(string(body)))
	if err != nil {
		return APIAnswer{}, &StepError{Step: StepVerify, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := f.httpClient().Do(req)
	if err != nil {
		return APIAnswer{}, &StepError{Step: StepVerify, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	ans := APIAnswer{Status: resp.StatusCode}
	if err != nil {
		return ans, &StepError{Step: StepVerify, Status: resp.StatusCode, Err: err}
	}
	var b struct {
		Verified *bool  `json:"devicePhoneNumberVerified"`
		Code     string `json:"code"`
		Message  string `json:"message"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return ans, &StepError{Step: StepVerify, Status: resp.StatusCode, Detail: "answer is not JSON: " + snippet(raw)}
	}
	ans.Verified, ans.Code, ans.Message = b.Verified, b.Code, b.Message
	return ans, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// Flows runs complete flows from Users concurrent virtual users (1 when
// zero); flow i is for Devices[i % len(Devices)].
type Flows struct {
	Flow    *Flow
	Devices []*Device
	Users   int
	// Count stops after that many flows were started (0: until the
	// context is done); Rate limits flows started per second (0: none).
	Count int
	Rate  float64
	// OnResult, when set, is called (concurrently) after each flow.
	OnResult func(Result, error)
}

// FlowReport counts what a Flows run did.
type FlowReport struct {
	Started, OK, Failed int
	Elapsed             time.Duration
}

// Run drives the flows until ctx is done or Count flows were started. A
// flow cut short by the end of ctx is counted as failed and reported to
// OnResult like any other.
func (fs *Flows) Run(ctx context.Context) (FlowReport, error) {
	if fs.Flow == nil || len(fs.Devices) == 0 {
		return FlowReport{}, errors.New("loadgen: Flows needs a Flow and devices")
	}
	var lim *rate.Limiter
	if fs.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(fs.Rate), max(1, int(fs.Rate/100)))
	}
	var (
		mu  sync.Mutex
		rep FlowReport
		wg  sync.WaitGroup
	)
	next := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil || (fs.Count > 0 && rep.Started >= fs.Count) {
			return 0, false
		}
		rep.Started++
		return rep.Started - 1, true
	}
	t0 := time.Now()
	for range max(fs.Users, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i, ok := next()
				if !ok {
					return
				}
				if lim != nil && lim.Wait(ctx) != nil {
					mu.Lock()
					rep.Started--
					mu.Unlock()
					return
				}
				res, err := fs.Flow.Run(ctx, fs.Devices[i%len(fs.Devices)])
				mu.Lock()
				if err == nil {
					rep.OK++
				} else {
					rep.Failed++
				}
				mu.Unlock()
				if fs.OnResult != nil {
					fs.OnResult(res, err)
				}
			}
		}()
	}
	wg.Wait()
	rep.Elapsed = time.Since(t0)
	return rep, nil
}
