package limits

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

// Route names, as server.Routes passes them to its Guard.
const (
	RouteAuthorize = "authorize"
	RouteToken     = "token"
	RouteAPI       = "api"
)

// Reasons passed to Config.OnLimited.
const (
	ReasonRate  = "rate"
	ReasonQuota = "quota"
)

// maxForm bounds the /token and POST /authorize bodies the guard reads,
// the same bound the authorization server applies.
const maxForm = 64 << 10

// Config is what a Guard is built from. A nil limiter is off.
type Config struct {
	AuthorizePerAddress *Keyed
	TokenPerClient      *Keyed
	APIPerClient        *Keyed
	// Clients finds the client named at /authorize and /token, and the
	// daily quota of an API caller's client.
	Clients nv.ClientStore
	// Tokens finds the client of an API call's bearer token (without
	// consuming it).
	Tokens nv.TokenStore
	// Usage counts API calls against daily quotas; nil: quotas off.
	Usage nv.UsageStore
	// ClientAddr gives the device's address (after trusted proxies).
	ClientAddr func(*http.Request) netip.AddrPort
	// Issuer is sent as iss with a redirected error (RFC 9207).
	Issuer string
	// APIError writes a CAMARA error response (api.WriteError).
	APIError func(http.ResponseWriter, error)
	// OnLimited, if set, is told of each request refused (route, reason).
	OnLimited func(route, reason string)
	// Record, if set, is given a usage record for each API call refused
	// here (the API records the calls it answers).
	Record func(ctx context.Context, r nv.UsageRecord)
	Logger *slog.Logger
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// Guard wraps the public routes with the limits of its Config.
type Guard struct {
	cfg Config
	log *slog.Logger
}

// New returns a guard. Clients, Tokens, ClientAddr and APIError are
// required when the limiters or quotas that use them are on.
func New(cfg Config) *Guard {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Guard{cfg: cfg, log: cfg.Logger}
}

// Wrap guards route name (one of the Route constants; others are returned
// unchanged). Its signature is server.Routes.Guard's.
func (g *Guard) Wrap(name string, h http.Handler) http.Handler {
	switch {
	case name == RouteAuthorize && g.cfg.AuthorizePerAddress != nil:
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.authorize(w, r, h) })
	case name == RouteToken && g.cfg.TokenPerClient != nil:
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.token(w, r, h) })
	case name == RouteAPI && (g.cfg.APIPerClient != nil || g.cfg.Usage != nil):
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.api(w, r, h) })
	}
	return h
}

func (g *Guard) limited(route, reason string) {
	if g.cfg.OnLimited != nil {
		g.cfg.OnLimited(route, reason)
	}
}

// addressKey is the device address /authorize is limited by: the IPv4
// address, or the /64 of an IPv6 one (a subscriber's device holds a whole
// /64, RFC 3162 / 3GPP).
func addressKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return p.String()
	}
	return a.String()
}

func (g *Guard) authorize(w http.ResponseWriter, r *http.Request, next http.Handler) {
	now := g.cfg.Now()
	key := addressKey(g.cfg.ClientAddr(r).Addr())
	_, ok, retry := g.cfg.AuthorizePerAddress.Take(key, now)
	if ok {
		next.ServeHTTP(w, r)
		return
	}
	g.limited(RouteAuthorize, ReasonRate)
	g.log.InfoContext(r.Context(), "authorize: rate limited", "addr_key", key, "retry_after_s", retryAfterSeconds(retry))
	if target := g.errorRedirect(r); target != "" {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, target, http.StatusSeeOther)
		return
	}
	w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(retry)))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusTooManyRequests)
	_ = limitedPage.Execute(w, retryAfterSeconds(retry))
}

var limitedPage = template.Must(template.New("429").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Too many requests</title></head>
<body><h1>Too many requests</h1>
<p>Too many authorization requests came from this device's network address: <code>temporarily_unavailable</code></p>
<p>Try again in {{.}} s.</p></body></html>
`))

// errorRedirect returns where to send a limited /authorize request: the
// redirect_uri with error=temporarily_unavailable, state and iss, when
// client_id is an onboarded client and redirect_uri one of its registered
// URIs (exact string); "" otherwise. A request object's redirect_uri and
// state are used when the plain parameters lack them: the target is a URI
// the client registered either way, so trusting the unverified object
// cannot send the device anywhere else.
func (g *Guard) errorRedirect(r *http.Request) string {
	params, err := authorizeParams(r)
	if err != nil {
		return ""
	}
	clientID := params.Get("client_id")
	redirect, state := params.Get("redirect_uri"), params.Get("state")
	if obj := params.Get("request"); obj != "" && (redirect == "" || state == "") {
		var claims struct {
			ClientID    string `json:"client_id"`
			RedirectURI string `json:"redirect_uri"`
			State       string `json:"state"`
		}
		if jwtPayload(obj, &claims) == nil && (claims.ClientID == "" || claims.ClientID == clientID) {
			if redirect == "" {
				redirect = claims.RedirectURI
			}
			if state == "" {
				state = claims.State
			}
		}
	}
	if clientID == "" || redirect == "" {
		return ""
	}
	c, err := g.cfg.Clients.Client(r.Context(), clientID)
	if err != nil || !slices.Contains(c.RedirectURIs, redirect) {
		return ""
	}
	u, err := url.Parse(redirect)
	if err != nil {
		return ""
	}
	q := url.Values{
		"error":             {"temporarily_unavailable"},
		"error_description": {"too many authorization requests from this device's network address; try again later"},
		"iss":               {g.cfg.Issuer},
	}
	if state != "" {
		q.Set("state", state)
	}
	if u.RawQuery != "" {
		u.RawQuery += "&" + q.Encode()
	} else {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// authorizeParams reads the query, or for POST the form body (the request
// is answered here, so the body need not be kept).
func authorizeParams(r *http.Request) (url.Values, error) {
	if r.Method != http.MethodPost {
		return url.ParseQuery(r.URL.RawQuery)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxForm+1))
	if err != nil || len(body) > maxForm {
		return nil, errors.New("body unreadable or too large")
	}
	return url.ParseQuery(string(body))
}

// jwtPayload decodes the claims of a compact JWS without verifying it.
func jwtPayload(compact string, v any) error {
	parts := strings.Split(compact, ".")
	if len(parts) != 3 || len(parts[1]) > maxForm {
		return errors.New("not a compact JWS")
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

func (g *Guard) token(w http.ResponseWriter, r *http.Request, next http.Handler) {
	clientID := g.tokenClient(r)
	if clientID == "" {
		next.ServeHTTP(w, r)
		return
	}
	now := g.cfg.Now()
	res, ok, retry := g.cfg.TokenPerClient.Take(clientID, now)
	if !ok {
		g.limited(RouteToken, ReasonRate)
		g.log.InfoContext(r.Context(), "token: rate limited", "client_id", clientID, "retry_after_s", retryAfterSeconds(retry))
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(retry)))
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusTooManyRequests)
		_ = json.NewEncoder(w).Encode(map[string]string{
			"error":             "temporarily_unavailable",
			"error_description": fmt.Sprintf("too many token requests for this client; retry after %d s", retryAfterSeconds(retry)),
		})
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	next.ServeHTTP(sw, r)
	if sw.status == http.StatusUnauthorized {
		res.Cancel() // the caller could not authenticate as this client
	}
}

// tokenClient returns the onboarded client a /token request names (its
// client_id, or its client assertion's iss), or "" when it names none. The
// body is read (up to maxForm) and put back for the next handler.
func (g *Guard) tokenClient(r *http.Request) string {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if r.Method != http.MethodPost || mt != "application/x-www-form-urlencoded" || r.Body == nil {
		return ""
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxForm+1))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
	if err != nil || len(body) > maxForm {
		return ""
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return ""
	}
	id := form.Get("client_id")
	if id == "" {
		var claims struct {
			Issuer string `json:"iss"`
		}
		if jwtPayload(form.Get("client_assertion"), &claims) == nil {
			id = claims.Issuer
		}
	}
	if id == "" || len(id) > 256 {
		return ""
	}
	if _, err := g.cfg.Clients.Client(r.Context(), id); err != nil {
		return "" // unknown: the authorization server refuses it
	}
	return id
}

// statusWriter records the status a handler sent.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (g *Guard) api(w http.ResponseWriter, r *http.Request, next http.Handler) {
	ctx := r.Context()
	token := bearer(r.Header.Get("Authorization"))
	if token == "" {
		next.ServeHTTP(w, r)
		return
	}
	hash := nv.HashToken(token)
	clientID, err := g.callClient(ctx, hash)
	if err != nil {
		next.ServeHTTP(w, r) // unknown token (401) or a store error: the API answers
		return
	}
	now := g.cfg.Now()
	if g.cfg.APIPerClient != nil {
		if _, ok, retry := g.cfg.APIPerClient.Take(clientID, now); !ok {
			g.limited(RouteAPI, ReasonRate)
			g.log.InfoContext(ctx, "api: rate limited", "client_id", clientID, "retry_after_s", retryAfterSeconds(retry))
			g.apiError(w, r, retry, nv.Errorf(nv.CodeTooManyRequests, "Rate limit reached."))
			g.record(r, hash, now, nv.CodeTooManyRequests)
			return
		}
	}
	if g.cfg.Usage != nil {
		if refused, err := g.quota(ctx, clientID, now); err != nil {
			g.log.ErrorContext(ctx, "api: daily quota could not be counted", "client_id", clientID, "err", err)
			g.cfg.APIError(w, err)
			return
		} else if refused {
			g.limited(RouteAPI, ReasonQuota)
			g.log.InfoContext(ctx, "api: daily quota exceeded", "client_id", clientID)
			g.apiError(w, r, nextUTCMidnight(now).Sub(now), nv.Errorf(nv.CodeQuotaExceeded, "Out of resource quota."))
			g.record(r, hash, now, nv.CodeQuotaExceeded)
			return
		}
	}
	next.ServeHTTP(w, r)
}

// TokenClientFinder is a token store that can name a token's client
// without reading the whole token (the SQLite store answers from memory
// for the tokens it stored). Tokens that implement it are asked that
// instead of Token.
type TokenClientFinder interface {
	// TokenClient returns the client of the token with this hash, spent
	// or not (nv.ErrNotFound if there is none).
	TokenClient(ctx context.Context, hash string) (string, error)
}

// callClient is the client of an API call's token.
func (g *Guard) callClient(ctx context.Context, hash string) (string, error) {
	if f, ok := g.cfg.Tokens.(TokenClientFinder); ok {
		return f.TokenClient(ctx, hash)
	}
	t, err := g.cfg.Tokens.Token(ctx, hash)
	return t.ClientID, err
}

// record passes a refused API call to Config.Record; the token is read
// whole only then (a refusal is the rare case). A token gone meanwhile is
// not recorded.
func (g *Guard) record(r *http.Request, hash string, now time.Time, code nv.Code) {
	if g.cfg.Record == nil {
		return
	}
	t, err := g.cfg.Tokens.Token(r.Context(), hash)
	if err != nil {
		g.log.WarnContext(r.Context(), "api: refused call not recorded: its token could not be read", "err", err)
		return
	}
	op := "unknown"
	switch r.URL.Path {
	case "/number-verification/v2/verify":
		op = "phoneNumberVerify"
	case "/number-verification/v2/device-phone-number":
		op = "phoneNumberShare"
	}
	g.cfg.Record(r.Context(), nv.UsageRecord{At: now.UTC(), ClientID: t.ClientID, Event: nv.UsageAPICall, Operation: op,
		Purpose: t.Purpose, Scopes: t.Scopes, Result: string(code), Source: t.Source})
}

// quota counts one call of clientID against its daily quota and reports
// whether the quota was already spent.
func (g *Guard) quota(ctx context.Context, clientID string, now time.Time) (refused bool, err error) {
	c, err := g.cfg.Clients.Client(ctx, clientID)
	if errors.Is(err, nv.ErrNotFound) {
		return false, nil // removed since the token was issued: the token still answers
	}
	if err != nil {
		return false, err
	}
	if c.QuotaPerDay <= 0 {
		return false, nil
	}
	ok, err := g.cfg.Usage.TakeDailyQuota(ctx, clientID, now.UTC(), c.QuotaPerDay)
	return !ok, err
}

func (g *Guard) apiError(w http.ResponseWriter, r *http.Request, retry time.Duration, err error) {
	if c := r.Header.Get("x-correlator"); validCorrelator(c) {
		w.Header().Set("x-correlator", c)
	}
	w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(retry)))
	g.cfg.APIError(w, err)
}

// validCorrelator is CAMARA's x-correlator pattern
// ^[a-zA-Z0-9-_:;.\/<>{}]{0,256}$ (Commonalities r4.2), non-empty.
func validCorrelator(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_:;./<>{}", c) >= 0) {
			return false
		}
	}
	return true
}

// bearer returns the token of an "Authorization: Bearer TOKEN" header.
func bearer(h string) string {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

func nextUTCMidnight(now time.Time) time.Time {
	y, m, d := now.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}
