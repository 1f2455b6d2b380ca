package main

import (
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
