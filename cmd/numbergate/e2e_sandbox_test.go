package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/numbergate/numbergate/internal/nv"
)

const (
	scopeVerify = "openid number-verification:verify dpv:FraudPreventionAndDetection"
	scopeRead   = "openid number-verification:device-phone-number:read dpv:FraudPreventionAndDetection"
	devNumber   = "+34600000001"
)

// TestSandboxFlow plays every party of the CAMARA frontend flow against the
// real sandbox: discovery, authorize, token with private_key_jwt, the API.
func TestSandboxFlow(t *testing.T) {
	p := startSandbox(t, t.TempDir())

	t.Run("discovery", func(t *testing.T) {
		resp, err := p.http.Get(p.issuer + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var d map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"issuer":                 p.issuer,
			"authorization_endpoint": p.issuer + "/authorize",
			"token_endpoint":         p.issuer + "/token",
			"jwks_uri":               p.issuer + "/jwks",
		}
		for k, v := range want {
			if d[k] != v {
				t.Errorf("%s = %v, want %v", k, d[k], v)
			}
		}
		for k, v := range map[string]string{
			"response_types_supported":              `["code"]`,
			"subject_types_supported":               `["pairwise"]`,
			"token_endpoint_auth_methods_supported": `["private_key_jwt"]`,
			"code_challenge_methods_supported":      `["S256"]`,
			"grant_types_supported":                 `["authorization_code"]`,
		} {
			got, _ := json.Marshal(d[k])
			if string(got) != v {
				t.Errorf("%s = %s, want %s", k, got, v)
			}
		}
		if d["request_parameter_supported"] != true {
			t.Errorf("request_parameter_supported = %v", d["request_parameter_supported"])
		}
		for _, k := range []string{"registration_endpoint", "userinfo_endpoint"} {
			if _, ok := d[k]; ok {
				t.Errorf("discovery advertises %s, which is not served", k)
			}
		}
		algs, _ := json.Marshal(d["token_endpoint_auth_signing_alg_values_supported"])
		if strings.Contains(string(algs), "HS") || strings.Contains(string(algs), "none") {
			t.Errorf("symmetric or none assertion algorithms advertised: %s", algs)
		}
	})

	t.Run("verify true, ID token pairwise, no refresh token", func(t *testing.T) {
		tr := p.flow(scopeVerify, "tel:"+devNumber)
		if tr.Refresh != "" {
			t.Error("a refresh token was issued")
		}
		if tr.ExpiresIn <= 0 || tr.ExpiresIn > 300 {
			t.Errorf("expires_in = %d, want 1..300", tr.ExpiresIn)
		}
		idt := decodeJWTPayload(t, tr.IDToken)
		sub, _ := idt["sub"].(string)
		if sub == "" || strings.Contains(sub, strings.TrimPrefix(devNumber, "+")) {
			t.Errorf("ID token sub %q is empty or carries the number", sub)
		}
		if strings.Contains(tr.IDToken, strings.TrimPrefix(devNumber, "+")) {
			t.Error("ID token carries the number")
		}
		r := p.verify(tr.AccessToken, `{"phoneNumber":"`+devNumber+`"}`)
		if r.status != 200 || r.body["devicePhoneNumberVerified"] != true {
			t.Fatalf("verify = %d %v, want 200 true", r.status, r.body)
		}
		// The token was single use.
		r = p.verify(tr.AccessToken, `{"phoneNumber":"`+devNumber+`"}`)
		if r.status != 401 || r.body["code"] != "UNAUTHENTICATED" {
			t.Fatalf("reused token = %d %v, want 401 UNAUTHENTICATED", r.status, r.body)
		}
		// The same subscriber gets the same sub again (pairwise is stable).
		tr2 := p.flow(scopeVerify, "tel:"+devNumber)
		if sub2 := decodeJWTPayload(t, tr2.IDToken)["sub"]; sub2 != sub {
			t.Errorf("sub not stable for one subscriber: %v vs %v", sub2, sub)
		}
		if n := decodeJWTPayload(t, tr2.IDToken)["nonce"]; n == nil {
			t.Error("nonce not passed into the ID token")
		}
	})

	t.Run("verify false", func(t *testing.T) {
		tr := p.flow(scopeVerify, "tel:"+devNumber)
		r := p.verify(tr.AccessToken, `{"phoneNumber":"+34600000002"}`)
		if r.status != 200 || r.body["devicePhoneNumberVerified"] != false {
			t.Fatalf("verify = %d %v, want 200 false", r.status, r.body)
		}
	})

	t.Run("hashed true and false", func(t *testing.T) {
		h := nv.PhoneNumber(devNumber).Hash()
		tr := p.flow(scopeVerify, "tel:"+devNumber)
		r := p.verify(tr.AccessToken, `{"hashedPhoneNumber":"`+strings.ToUpper(h)+`"}`)
		if r.status != 200 || r.body["devicePhoneNumberVerified"] != true {
			t.Fatalf("hashed verify = %d %v, want true", r.status, r.body)
		}
		tr = p.flow(scopeVerify, "tel:"+devNumber)
		r = p.verify(tr.AccessToken, `{"hashedPhoneNumber":"`+nv.PhoneNumber("+34600000002").Hash()+`"}`)
		if r.status != 200 || r.body["devicePhoneNumberVerified"] != false {
			t.Fatalf("hashed verify = %d %v, want false", r.status, r.body)
		}
	})

	t.Run("device-phone-number and correlator", func(t *testing.T) {
		tr := p.flow(scopeRead, "tel:"+devNumber)
		r := p.call("GET", "/number-verification/v2/device-phone-number", tr.AccessToken, "", map[string]string{"x-correlator": "abc-123"})
		if r.status != 200 || r.body["devicePhoneNumber"] != devNumber {
			t.Fatalf("device-phone-number = %d %v", r.status, r.body)
		}
		if r.correlator != "abc-123" {
			t.Errorf("x-correlator not echoed: %q", r.correlator)
		}
	})

	t.Run("missing scope is 403 PERMISSION_DENIED", func(t *testing.T) {
		tr := p.flow(scopeVerify, "tel:"+devNumber)
		r := p.call("GET", "/number-verification/v2/device-phone-number", tr.AccessToken, "", map[string]string{"x-correlator": "c1"})
		if r.status != 403 || r.body["code"] != "PERMISSION_DENIED" {
			t.Fatalf("= %d %v", r.status, r.body)
		}
		if r.correlator != "c1" {
			t.Errorf("x-correlator not echoed on an error: %q", r.correlator)
		}
	})

	t.Run("sandbox tokens: expired 401, non-network 403", func(t *testing.T) {
		mint := func(body string) string {
			resp, err := p.http.Post(p.issuer+"/sandbox/tokens", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var m struct {
				AccessToken string `json:"access_token"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
				t.Fatalf("mint %s: %d %v", body, resp.StatusCode, err)
			}
			return m.AccessToken
		}
		tok := mint(`{"phoneNumber":"+34600000009","scope":"number-verification:verify","expiresIn":0,"authMethod":"network"}`)
		r := p.verify(tok, `{"phoneNumber":"+34600000009"}`)
		if r.status != 401 || r.body["code"] != "UNAUTHENTICATED" {
			t.Fatalf("expired = %d %v", r.status, r.body)
		}
		tok = mint(`{"phoneNumber":"+34600000009","scope":"number-verification:verify","expiresIn":60,"authMethod":"password"}`)
		r = p.verify(tok, `{"phoneNumber":"+34600000009"}`)
		if r.status != 403 || r.body["code"] != "NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK" {
			t.Fatalf("non-network = %d %v", r.status, r.body)
		}
		tok = mint(`{"phoneNumber":"+34600000009","scope":"number-verification:verify","expiresIn":60,"authMethod":"network"}`)
		r = p.verify(tok, `{"phoneNumber":"+34600000009"}`)
		if r.status != 200 || r.body["devicePhoneNumberVerified"] != true {
			t.Fatalf("minted network token = %d %v", r.status, r.body)
		}
	})

	t.Run("assertion jti replay is 401 invalid_client", func(t *testing.T) {
		v1, c1 := pkce()
		v2, c2 := pkce()
		a1 := p.authorize(url.Values{"code_challenge": {c1}, "code_challenge_method": {"S256"}, "login_hint": {"tel:" + devNumber}})
		a2 := p.authorize(url.Values{"code_challenge": {c2}, "code_challenge_method": {"S256"}, "login_hint": {"tel:" + devNumber}})
		as := p.assertion(nil)
		if tr := p.token(a1.code, v1, as); tr.status != 200 {
			t.Fatalf("first use: %d %s", tr.status, tr.Description)
		}
		tr := p.token(a2.code, v2, as)
		if tr.status != 401 || tr.Error != "invalid_client" {
			t.Fatalf("replayed assertion = %d %s, want 401 invalid_client", tr.status, tr.Error)
		}
	})

	t.Run("assertion lifetime bounds", func(t *testing.T) {
		for name, mod := range map[string]func(*jwt.Claims){
			"exp too far": func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(301 * time.Second)) },
			"exp-iat too big": func(c *jwt.Claims) {
				c.IssuedAt = jwt.NewNumericDate(time.Now().Add(-250 * time.Second))
				c.Expiry = jwt.NewNumericDate(time.Now().Add(100 * time.Second))
			},
			"no jti":    func(c *jwt.Claims) { c.ID = "" },
			"wrong aud": func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://elsewhere.example"} },
			"wrong iss": func(c *jwt.Claims) { c.Issuer = "someone-else" },
			"expired":   func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(-time.Minute)) },
		} {
			v, c := pkce()
			a := p.authorize(url.Values{"code_challenge": {c}, "code_challenge_method": {"S256"}, "login_hint": {"tel:" + devNumber}})
			tr := p.token(a.code, v, p.assertion(mod))
			if tr.status != 401 || tr.Error != "invalid_client" {
				t.Errorf("%s: %d %s, want 401 invalid_client", name, tr.status, tr.Error)
			}
		}
		// aud = issuer is accepted too.
		v, c := pkce()
		a := p.authorize(url.Values{"code_challenge": {c}, "code_challenge_method": {"S256"}, "login_hint": {"tel:" + devNumber}})
		if tr := p.token(a.code, v, p.assertion(func(c *jwt.Claims) { c.Audience = jwt.Audience{p.issuer} })); tr.status != 200 {
			t.Errorf("aud=issuer: %d %s", tr.status, tr.Description)
		}
	})

	t.Run("code replay is invalid_grant and revokes the first token", func(t *testing.T) {
		v, c := pkce()
		a := p.authorize(url.Values{"code_challenge": {c}, "code_challenge_method": {"S256"}, "login_hint": {"tel:" + devNumber}})
		first := p.token(a.code, v, p.assertion(nil))
		if first.status != 200 {
			t.Fatalf("first redemption: %d %s", first.status, first.Description)
		}
		second := p.token(a.code, v, p.assertion(nil))
		if second.status != 400 || second.Error != "invalid_grant" {
			t.Fatalf("replayed code = %d %s, want 400 invalid_grant", second.status, second.Error)
		}
		third := p.token(a.code, v, p.assertion(nil))
		if third.Error != "invalid_grant" {
			t.Errorf("third attempt = %s, want invalid_grant", third.Error)
		}
		r := p.verify(first.AccessToken, `{"phoneNumber":"`+devNumber+`"}`)
		if r.status != 401 {
			t.Fatalf("token of a replayed code still works: %d %v", r.status, r.body)
		}
	})

	t.Run("PKCE mismatch is invalid_grant", func(t *testing.T) {
		_, c := pkce()
		a := p.authorize(url.Values{"code_challenge": {c}, "code_challenge_method": {"S256"}, "login_hint": {"tel:" + devNumber}})
		other, _ := pkce()
		if tr := p.token(a.code, other, p.assertion(nil)); tr.Error != "invalid_grant" {
			t.Fatalf("= %d %s", tr.status, tr.Error)
		}
	})

	t.Run("purposes and scopes", func(t *testing.T) {
		for name, scope := range map[string]string{
			"no purpose":    "openid number-verification:verify",
			"two purposes":  "openid number-verification:verify dpv:FraudPreventionAndDetection dpv:RequestedServiceProvision",
			"unknown scope": "openid number-verification:verify dpv:FraudPreventionAndDetection sim-swap:check",
			"empty purpose": "openid number-verification:verify dpv:",
		} {
			a := p.authorize(url.Values{"scope": {scope}, "login_hint": {"tel:" + devNumber}})
			if a.err != "invalid_scope" || a.code != "" {
				t.Errorf("%s: error %q code %q (%d %s), want invalid_scope and no code", name, a.err, a.code, a.status, a.body)
			}
		}
	})

	t.Run("bad client or redirect_uri is a page, not a redirect", func(t *testing.T) {
		for name, q := range map[string]url.Values{
			"unknown client":        {"client_id": {"nobody"}},
			"unregistered redirect": {"redirect_uri": {"https://attacker.example/cb"}},
		} {
			a := p.authorize(q)
			if a.location != "" || a.status < 400 || !strings.Contains(a.body, "<html") {
				t.Errorf("%s: status %d location %q", name, a.status, a.location)
			}
		}
	})

	t.Run("bad body is 400 and does not burn the token", func(t *testing.T) {
		tr := p.flow(scopeVerify, "tel:"+devNumber)
		for _, body := range []string{`{}`, `{"phoneNumber":"34600000001"}`, `{"phoneNumber":"+34600000001","hashedPhoneNumber":"` + nv.PhoneNumber(devNumber).Hash() + `"}`, `{"phoneNumber":1}`, `{"foo":"bar"}`, `nope`} {
			r := p.verify(tr.AccessToken, body)
			if r.status != 400 || r.body["code"] != "INVALID_ARGUMENT" {
				t.Errorf("body %s: %d %v", body, r.status, r.body)
			}
		}
		r := p.verify(tr.AccessToken, `{"phoneNumber":"`+devNumber+`"}`)
		if r.status != 200 {
			t.Fatalf("token burnt by a rejected request: %d %v", r.status, r.body)
		}
	})

	t.Run("no token is 401", func(t *testing.T) {
		r := p.verify("", `{"phoneNumber":"`+devNumber+`"}`)
		if r.status != 401 || r.body["code"] != "UNAUTHENTICATED" {
			t.Fatalf("= %d %v", r.status, r.body)
		}
	})
	_ = http.MethodGet
}
