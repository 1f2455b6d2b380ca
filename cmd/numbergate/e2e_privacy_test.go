package main

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/testnet"
)

// TestServeLogsCarryNoSecrets runs the real serve path, at debug level,
// through every way a number reaches it (static map, RADIUS accounting,
// header enrichment, login_hint, the verify body in clear and hashed) and
// through refusals (bad number, replayed code, forged assertion, spent
// token, wrong RADIUS secret), then checks that no log line carries a
// number, its hash, an access or ID token, a code, a code_verifier, a
// client assertion or the RADIUS secret, and that no error answer echoes
// the number it refused.
func TestServeLogsCarryNoSecrets(t *testing.T) {
	testnet.RequireLoopbackAliases(t)
	pc := udpConn(t)
	const radiusSecret = "radius-shared-s3cret"
	n := startServeWith(t, t.TempDir(), `network:
  static:
    - prefix: 127.0.0.91/32
      msisdn: "+34600000091"
  radius:
    listen: 127.0.0.1:0
    clients:
      - cidr: 127.0.0.0/8
        secret: "`+radiusSecret+`"
  header_enrichment:
    proxies: [127.0.0.93/32]
    headers: [X-MSISDN]
`, serveListeners{radius: pc})
	var secrets []string // everything that must not reach a log
	keep := func(s ...string) {
		for _, v := range s {
			if v != "" {
				secrets = append(secrets, v)
			}
		}
	}
	// Numbers are matched by their national digits, in whatever form.
	keep("600000091", "600000092", "600000093", "699999999", "600000094", "600000095", radiusSecret)

	// Static map, with a login_hint that production ignores.
	p := onboard(t, n, "app-private", "127.0.0.91")
	verifier, challenge := pkce()
	ar := p.authorize(url.Values{"scope": {scopeVerify}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
		"login_hint": {"tel:+34699999999"}})
	if ar.code == "" {
		t.Fatalf("authorize: %q %s", ar.err, ar.errDesc)
	}
	as := p.assertion(nil)
	tr := p.token(ar.code, verifier, as)
	if tr.status != 200 {
		t.Fatalf("token: %d %s", tr.status, tr.Description)
	}
	keep(ar.code, verifier, as, tr.AccessToken, tr.IDToken)
	// The code again (invalid_grant, revokes the token) and a forged
	// assertion (invalid_client).
	if again := p.token(ar.code, verifier, p.assertion(nil)); again.status == 200 {
		t.Error("a replayed code was exchanged")
	}
	forger := *p
	forger.key = newTestKey(t)
	forged := forger.assertion(nil)
	keep(forged)
	if f := forger.token("no-such-code", "", forged); f.status != http.StatusUnauthorized {
		t.Errorf("forged assertion: %d", f.status)
	}

	// The verify body: in clear, hashed, wrong and malformed numbers, and
	// a spent token.
	check := func(what string, r apiResult, wantStatus int) {
		t.Helper()
		if r.status != wantStatus {
			t.Errorf("%s: %d %v, want %d", what, r.status, r.body, wantStatus)
		}
		for _, s := range []string{"600000094", "600000095", "600000091"} {
			if msg, _ := r.body["message"].(string); strings.Contains(msg, s) {
				t.Errorf("%s: the error answer echoes a number: %q", what, msg)
			}
		}
	}
	tr = p.flow(scopeVerify, "")
	keep(tr.AccessToken, tr.IDToken)
	check("verify", p.verify(tr.AccessToken, `{"phoneNumber":"+34600000091"}`), 200)
	check("spent token", p.verify(tr.AccessToken, `{"phoneNumber":"+34600000091"}`), 401)
	tr = p.flow(scopeVerify, "")
	keep(tr.AccessToken, tr.IDToken)
	check("malformed number", p.verify(tr.AccessToken, `{"phoneNumber":"34600000095x"}`), 400)
	tr = p.flow(scopeVerify, "")
	keep(tr.AccessToken, tr.IDToken)
	sum := sha256.Sum256([]byte("+34600000094"))
	hashed := hex.EncodeToString(sum[:])
	keep(hashed)
	check("hashed, another number", p.verify(tr.AccessToken, `{"hashedPhoneNumber":"`+hashed+`"}`), 200)
	tr = p.flow(scopeRead, "")
	keep(tr.AccessToken, tr.IDToken)
	if r := p.call("GET", "/number-verification/v2/device-phone-number", tr.AccessToken, "", nil); r.status != 200 {
		t.Errorf("device-phone-number: %d %v", r.status, r.body)
	}

	// RADIUS: a Start with a wrong secret (dropped), then the right one;
	// the device behind that address runs the flow.
	acct := func(secret string) error {
		wait := answerWait
		if secret != radiusSecret {
			wait = silenceWait
		}
		_, err := accountingStart(pc.LocalAddr().String(), secret, "127.0.0.92", "34600000092", "privacy-1", wait)
		return err
	}
	if acct("not-the-secret") == nil {
		t.Error("a Start with a wrong secret was answered")
	}
	if err := acct(radiusSecret); err != nil {
		t.Fatalf("RADIUS Start: %v", err)
	}
	q := *p
	q.device = deviceClient("127.0.0.92")
	tr = q.flow(scopeVerify, "")
	keep(tr.AccessToken, tr.IDToken)
	check("verify (RADIUS)", q.verify(tr.AccessToken, `{"phoneNumber":"+34600000092"}`), 200)

	// Header enrichment, once well-formed and once not a number.
	for _, v := range []string{"34600000093", "+34600000093 and more"} {
		_, c := pkce()
		qs := url.Values{"response_type": {"code"}, "client_id": {p.clientID}, "redirect_uri": {p.redirect},
			"scope": {scopeRead}, "state": {"s"}, "code_challenge": {c}, "code_challenge_method": {"S256"}}
		req, _ := http.NewRequest("GET", n.issuer+"/authorize?"+qs.Encode(), nil)
		req.Header.Set("X-MSISDN", v)
		resp, err := deviceClient("127.0.0.93").Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if u, err := url.Parse(resp.Header.Get("Location")); err == nil {
			keep(u.Query().Get("code"))
		}
	}

	logs := n.logs.String()
	// The debug lines that name a subscriber are there, masked.
	if m := nv.PhoneNumber("+34600000092").Masked(); !strings.Contains(logs, m) {
		t.Fatalf("the log lacks the masked number %s (not captured at debug level?):\n%s", m, logs)
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("a log line carries %q", s)
		}
	}
	if t.Failed() {
		t.Logf("server log:\n%s", logs)
	}
}
