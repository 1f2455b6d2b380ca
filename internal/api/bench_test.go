package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/numbergate/numbergate/internal/nv"
)

// BenchmarkVerify measures one POST /verify through the whole handler,
// token consumption included (each iteration spends a fresh token, issued
// before the timer starts): on the real SQLite store, and on an in-memory
// store to show the handler's own cost.
func BenchmarkVerify(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchmarkVerify(b, newFixture(b)) })
	b.Run("memory", func(b *testing.B) { benchmarkVerify(b, newFixtureOn(newMemTokens())) })
}

func benchmarkVerify(b *testing.B, f *fixture) {
	tokens := make([]string, b.N)
	for i := range tokens {
		tokens[i] = f.issue(b, nv.AuthNetwork, nv.ScopeVerify)
	}
	const body = `{"hashedPhoneNumber":"` + phoneHash + `"}`
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r := httptest.NewRequest(http.MethodPost, "/number-verification/v2/verify", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+tokens[i])
		r.Header.Set("x-correlator", "bench")
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, r)
		if rec.Code != 200 {
			b.Fatalf("status %d %s", rec.Code, rec.Body)
		}
	}
}
