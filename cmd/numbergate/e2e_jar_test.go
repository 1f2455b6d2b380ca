package main

import (
	"crypto/rand"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// TestSandboxRequestObject sends signed request objects (RFC 9101) with
// CAMARA's rules: iss, aud, iat, exp, jti present; exp - iat <= 300 s; the
// core parameters also sent in plain form and equal.
func TestSandboxRequestObject(t *testing.T) {
	p := startSandbox(t, t.TempDir())
	type ro struct {
		jwt.Claims
		ResponseType  string `json:"response_type,omitempty"`
		ClientID      string `json:"client_id,omitempty"`
		Scope         string `json:"scope,omitempty"`
		RedirectURI   string `json:"redirect_uri,omitempty"`
		State         string `json:"state,omitempty"`
		Nonce         string `json:"nonce,omitempty"`
		LoginHint     string `json:"login_hint,omitempty"`
		CodeChallenge string `json:"code_challenge,omitempty"`
		CCMethod      string `json:"code_challenge_method,omitempty"`
	}
	base := func() ro {
		now := time.Now()
		_, c := pkce()
		return ro{
			Claims: jwt.Claims{Issuer: p.clientID, Audience: jwt.Audience{p.issuer + "/authorize"}, ID: rand.Text(),
				IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(2 * time.Minute))},
			ResponseType: "code", ClientID: p.clientID, Scope: scopeVerify, RedirectURI: p.redirect,
			Nonce: "n1", LoginHint: "tel:" + devNumber, CodeChallenge: c, CCMethod: "S256",
		}
	}
	send := func(o ro, plain url.Values) authzResult {
		q := url.Values{"request": {p.sign(o, nil)}, "state": {"s1"}}
		for k, v := range plain {
			q[k] = v
		}
		return p.authorize(q)
	}
	plainOf := func(o ro) url.Values {
		return url.Values{"response_type": {o.ResponseType}, "client_id": {o.ClientID}, "scope": {o.Scope}, "redirect_uri": {o.RedirectURI}}
	}

	if a := send(base(), plainOf(base())); a.code == "" {
		t.Fatalf("valid request object: no code (%q %s; %d %s)", a.err, a.errDesc, a.status, a.body)
	}
	o := base()
	o.Audience = jwt.Audience{p.issuer}
	if a := send(o, plainOf(o)); a.code == "" {
		t.Errorf("aud = issuer refused: %q %s", a.err, a.errDesc)
	}

	// RFC 9101 clients send only client_id and request (issue 6 item 10):
	// the signed object is authoritative; plain parameters may be absent.
	for name, drop := range map[string][]string{
		"only client_id and request": {"response_type", "scope", "redirect_uri"},
		"plain scope missing":        {"scope"},
		"plain redirect absent":      {"redirect_uri"},
	} {
		o := base()
		q := plainOf(o)
		full := url.Values{"request": {p.sign(o, nil)}, "state": {"s1"}}
		for k, v := range q {
			full[k] = v
		}
		for _, k := range drop {
			full[k] = []string{""} // authorize() deletes keys set to ""
		}
		if a := p.authorize(full); a.code == "" {
			t.Errorf("%s: no code (%q %s; %d %s)", name, a.err, a.errDesc, a.status, a.body)
		}
	}

	cases := map[string]func(*ro, url.Values){
		"no jti":              func(o *ro, _ url.Values) { o.ID = "" },
		"no iat":              func(o *ro, _ url.Values) { o.IssuedAt = nil },
		"no exp":              func(o *ro, _ url.Values) { o.Expiry = nil },
		"lifetime over 300 s": func(o *ro, _ url.Values) { o.Expiry = jwt.NewNumericDate(o.IssuedAt.Time().Add(301 * time.Second)) },
		"wrong aud":           func(o *ro, _ url.Values) { o.Audience = jwt.Audience{"https://other.example"} },
		"no aud":              func(o *ro, _ url.Values) { o.Audience = nil },
		"plain scope differs": func(_ *ro, q url.Values) {
			q.Set("scope", "openid number-verification:device-phone-number:read dpv:FraudPreventionAndDetection")
		},
		"iat in the future": func(o *ro, _ url.Values) {
			o.IssuedAt = jwt.NewNumericDate(time.Now().Add(24 * time.Hour))
			o.Expiry = jwt.NewNumericDate(o.IssuedAt.Time().Add(300 * time.Second))
		},
		"plain redirect differs": func(_ *ro, q url.Values) { q.Set("redirect_uri", p.redirect+"x") },
	}
	for name, mod := range cases {
		o := base()
		q := plainOf(o)
		mod(&o, q)
		full := url.Values{"request": {p.sign(o, nil)}, "state": {"s1"}}
		for k, v := range q {
			full[k] = v
		}
		for _, k := range []string{"response_type", "client_id", "scope", "redirect_uri"} {
			if _, ok := q[k]; !ok {
				full[k] = []string{""} // authorize() deletes keys set to ""
			}
		}
		a := p.authorize(full)
		if a.code != "" {
			t.Errorf("%s: a code was issued", name)
		}
		if a.err == "" && a.status < 400 {
			t.Errorf("%s: no error (%d)", name, a.status)
		}
	}
}
