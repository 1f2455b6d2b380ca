package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/api"
	"github.com/numbergate/numbergate/internal/nv"
)

// TestUsageRecords: one usage record per call whose token was consumed,
// whatever its answer, carrying the code sent; none for a call whose token
// was unknown, already used, or never reached (a refused body). The
// records are the same whether the store keeps them with the token's
// consumption (Options.UsageStore, as serve does) or they are handed to
// Options.Usage after the answer.
func TestUsageRecords(t *testing.T) {
	ctx := context.Background()
	run := func(t *testing.T, f *fixture, records func() []nv.UsageRecord) {
		t.Helper()
		body := `{"phoneNumber":"+123456789"}`
		ok := f.issue(t, nv.AuthNetwork, nv.ScopeVerify)
		wrongScope := f.issue(t, nv.AuthNetwork, nv.ScopeDevicePhoneNumber)
		notNet := f.issue(t, nv.AuthOther, nv.ScopeVerify)
		shared := f.issue(t, nv.AuthSIM, nv.ScopeDevicePhoneNumber)
		expired := f.issue(t, nv.AuthNetwork, nv.ScopeVerify)
		kept := f.issue(t, nv.AuthNetwork, nv.ScopeVerify)
		calls := []struct {
			c      call
			status int
		}{
			{verify(ok, body), 200},
			{verify(ok, body), 401}, // used: no record
			{verify("never-issued", body), 401},
			{verify(kept, `{}`), 400}, // refused before the token: no record, token kept
			{verify(wrongScope, body), 403},
			{verify(notNet, body), 403},
			{share(shared), 200},
		}
		for i, c := range calls {
			if rec := f.do(c.c); rec.Code != c.status {
				t.Fatalf("call %d: status %d, want %d (%s)", i, rec.Code, c.status, rec.Body)
			}
		}
		f.now = t0.Add(400 * time.Second)
		if rec := f.do(verify(expired, body)); rec.Code != 401 {
			t.Fatalf("expired: status %d", rec.Code)
		}
		f.now = t0
		if rec := f.do(verify(kept, body)); rec.Code != 200 {
			t.Fatalf("token refused with a bad body was spent: %d %s", rec.Code, rec.Body)
		}
		rec := func(op, result string, scopes []string, at time.Time) nv.UsageRecord {
			return nv.UsageRecord{At: at, ClientID: "client-1", Event: nv.UsageAPICall, Operation: op,
				Purpose: "dpv:FraudPreventionAndDetection", Scopes: append([]string{nv.ScopeOpenID}, scopes...), Result: result, Source: "static"}
		}
		verifyScope, shareScope := []string{nv.ScopeVerify}, []string{nv.ScopeDevicePhoneNumber}
		want := []nv.UsageRecord{
			rec(api.OpVerify, "OK", verifyScope, t0),
			rec(api.OpVerify, string(nv.CodePermissionDenied), shareScope, t0),
			rec(api.OpVerify, string(nv.CodeNotNetworkAuthn), verifyScope, t0),
			rec(api.OpDevicePhoneNumber, "OK", shareScope, t0),
			rec(api.OpVerify, string(nv.CodeUnauthenticated), verifyScope, t0.Add(400*time.Second)),
			rec(api.OpVerify, "OK", verifyScope, t0),
		}
		got := records()
		if len(got) != len(want) {
			t.Fatalf("%d records, want %d: %+v", len(got), len(want), got)
		}
		for i := range want {
			g, w := got[i], want[i]
			if !g.At.Equal(w.At) || g.ClientID != w.ClientID || g.Event != w.Event || g.Operation != w.Operation ||
				g.Purpose != w.Purpose || strings.Join(g.Scopes, " ") != strings.Join(w.Scopes, " ") || g.Result != w.Result || g.Source != w.Source {
				t.Errorf("record %d:\n got %+v\nwant %+v", i, g, w)
			}
		}
	}

	t.Run("with the consumption", func(t *testing.T) {
		st := openStore(t)
		f := newFixtureOn(st)
		run(t, f, func() []nv.UsageRecord {
			// In call order: the expired call's record is the latest.
			rs, err := st.(nv.UsageStore).UsageRecords(ctx, t0.Add(-time.Hour), t0.Add(time.Hour))
			if err != nil {
				t.Fatalf("UsageRecords: %v", err)
			}
			if len(rs) != 6 {
				return rs
			}
			return append(rs[:4:4], rs[5], rs[4])
		})
	})
	t.Run("in memory", func(t *testing.T) {
		st := newMemTokens()
		f := newFixtureOn(st)
		run(t, f, func() []nv.UsageRecord { return st.records })
	})
	t.Run("after the answer", func(t *testing.T) {
		var (
			mu  sync.Mutex
			got []nv.UsageRecord
		)
		f := newFixtureOn(openStore(t))
		f.h = api.NewHandler(f.store, api.Options{Now: func() time.Time { return f.now }, Usage: func(_ context.Context, r nv.UsageRecord) {
			mu.Lock()
			got = append(got, r)
			mu.Unlock()
		}})
		run(t, f, func() []nv.UsageRecord { return got })
	})
}

// TestUsageStoreFailure: when the store cannot consume the token (and so
// cannot keep its record), the call is answered 500 and nothing is
// recorded.
func TestUsageStoreFailure(t *testing.T) {
	h := api.NewHandler(failingStore{}, api.Options{UsageStore: failingUsageStore{}})
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, api.DevicePhoneNumberPath, nil)
	r.Header.Set("Authorization", "Bearer secret-token-value")
	h.ServeHTTP(rec, r)
	expect(t, rec, 500, `{"status":500,"code":"INTERNAL","message":"Unknown server error. Typically a server bug."}`)
}

type failingUsageStore struct{}

func (failingUsageStore) ConsumeTokenFor(context.Context, string, time.Time, nv.UsageRecorder) (nv.AccessToken, error) {
	return nv.AccessToken{}, fmt.Errorf("database is locked at /secret/path")
}
