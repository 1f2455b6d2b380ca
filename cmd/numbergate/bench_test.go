package main

import (
	"net/url"
	"testing"
)

// BenchmarkFlow measures one whole frontend flow against the real sandbox
// over loopback HTTP: authorize (network identity, code), token
// (private_key_jwt verification, jti, code redemption, opaque token, ES256 ID
// token) and one verify call.
func BenchmarkFlow(b *testing.B) {
	p := startSandbox(b, b.TempDir())
	body := `{"phoneNumber":"` + devNumber + `"}`
	b.ResetTimer()
	for b.Loop() {
		tr := p.flow(scopeVerify, "tel:"+devNumber)
		if r := p.verify(tr.AccessToken, body); r.status != 200 {
			b.Fatalf("verify %d", r.status)
		}
	}
}

// BenchmarkToken measures POST /token alone against the real sandbox over
// loopback HTTP: client assertion verification (ES256), jti consumption,
// code redemption, the opaque token and the ES256-signed ID token. The
// codes are obtained at /authorize before the timer starts.
func BenchmarkToken(b *testing.B) {
	p := startSandbox(b, b.TempDir())
	type code struct{ code, verifier string }
	codes := make([]code, b.N)
	for i := range codes {
		verifier, challenge := pkce()
		ar := p.authorize(url.Values{"scope": {scopeVerify}, "code_challenge": {challenge},
			"code_challenge_method": {"S256"}, "login_hint": {"tel:" + devNumber}})
		if ar.code == "" {
			b.Fatalf("authorize: %d %s", ar.status, ar.err)
		}
		codes[i] = code{ar.code, verifier}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if tr := p.token(codes[i].code, codes[i].verifier, p.assertion(nil)); tr.status != 200 {
			b.Fatalf("token: %d %s %s", tr.status, tr.Error, tr.Description)
		}
	}
}
