package limits_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/limits"
	"github.com/numbergate/numbergate/internal/nv"
)

// BenchmarkKeyedTake measures one limiter decision, from parallel
// goroutines over 10,000 keys.
func BenchmarkKeyedTake(b *testing.B) {
	k := limits.NewKeyed(1_000_000, time.Second, 0)
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = fmt.Sprint("198.51.", i/256, ".", i%256)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			k.Take(keys[i%len(keys)], time.Now())
			i++
		}
	})
}

// BenchmarkGuardAPI measures what the guard adds to one API call on the
// SQLite store: the token lookup and the per-client rate decision, and with
// a daily quota also the client read and the counting write.
func BenchmarkGuardAPI(b *testing.B) {
	for _, quota := range []int64{0, 1 << 40} {
		b.Run(fmt.Sprintf("quota=%v", quota > 0), func(b *testing.B) {
			fx := newFixture(b)
			c, _ := fx.st.Client(b.Context(), "app")
			c.QuotaPerDay = quota
			if err := fx.st.PutClient(b.Context(), c); err != nil {
				b.Fatal(err)
			}
			// Expiring as a live token does (the fixture's clock is fixed
			// in the past): the store may answer its client from memory.
			err := fx.st.SaveToken(b.Context(), nv.AccessToken{Hash: nv.HashToken("bench-token"), ClientID: "app",
				MSISDN: "+34600000001", Scopes: []string{nv.ScopeVerify}, AuthMethod: nv.AuthNetwork,
				IssuedAt: time.Now(), ExpiresAt: time.Now().Add(5 * time.Minute)})
			if err != nil {
				b.Fatal(err)
			}
			h := fx.route(fx.guard(limits.Config{APIPerClient: limits.NewKeyed(1_000_000_000, time.Second, 0)}), limits.RouteAPI)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, apiReq("bench-token", ""))
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}
