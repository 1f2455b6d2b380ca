package storetest

import (
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/numbergate/numbergate/internal/nv"
)

// usageOf is a UsageRecorder for the tests: the record names the token's
// hash (as its Operation) and the error it was given (as its Result).
func usageOf(calls *atomic.Int64) nv.UsageRecorder {
	return func(tok nv.AccessToken, err error) (nv.UsageRecord, bool) {
		calls.Add(1)
		result := "OK"
		if err != nil {
			result = err.Error()
		}
		return nv.UsageRecord{At: at(5), ClientID: tok.ClientID, Event: nv.UsageAPICall, Operation: tok.Hash,
			Purpose: tok.Purpose, Scopes: tok.Scopes, Result: result, Source: tok.Source}, true
	}
}

// allUsage returns every usage record the tests write (they are all at at(5)).
func allUsage(t *testing.T, s nv.Store) []nv.UsageRecord {
	t.Helper()
	got, err := s.UsageRecords(t.Context(), at(-3600), at(3600))
	must(t, err, "UsageRecords")
	return got
}

// testConsumeTokenFor: the usage record is stored, field for field, iff the
// call consumed the token (live or expired); a used, unknown or revoked
// token stores none and the recorder is not asked; a recorder that says no
// leaves the token consumed and stores nothing.
func testConsumeTokenFor(t *testing.T, s nv.Store) {
	ctx := t.Context()
	mustGrant(t, s, "g-1")
	live := token("h-live", "g-1", at(300))
	old := token("h-expired", "g-1", at(300))
	quiet := token("h-quiet", "", at(300))
	revoked := token("h-revoked", "g-2", at(300))
	mustGrant(t, s, "g-2")
	for _, tok := range []nv.AccessToken{live, old, quiet, revoked} {
		must(t, s.SaveToken(ctx, tok), "SaveToken("+tok.Hash+")")
	}
	must(t, s.RevokeGrant(ctx, "g-2"), "RevokeGrant")

	var calls atomic.Int64
	got, err := s.ConsumeTokenFor(ctx, live.Hash, at(10), usageOf(&calls))
	must(t, err, "ConsumeTokenFor")
	equal(t, got, live, "ConsumeTokenFor")
	want := []nv.UsageRecord{{At: at(5), ClientID: live.ClientID, Event: nv.UsageAPICall, Operation: live.Hash,
		Purpose: live.Purpose, Scopes: live.Scopes, Result: "OK", Source: live.Source}}
	equal(t, allUsage(t, s), want, "usage after a consumption")

	// Already used, unknown, revoked: nothing stored, recorder not asked.
	calls.Store(0)
	_, err = s.ConsumeTokenFor(ctx, live.Hash, at(11), usageOf(&calls))
	wantErr(t, err, nv.ErrConsumed, "ConsumeTokenFor(twice)")
	_, err = s.ConsumeTokenFor(ctx, "h-unknown", at(11), usageOf(&calls))
	wantErr(t, err, nv.ErrNotFound, "ConsumeTokenFor(unknown)")
	_, err = s.ConsumeTokenFor(ctx, revoked.Hash, at(11), usageOf(&calls))
	wantErr(t, err, nv.ErrNotFound, "ConsumeTokenFor(revoked)")
	if n := calls.Load(); n != 0 {
		t.Errorf("recorder called %d times for tokens not consumed", n)
	}
	equal(t, allUsage(t, s), want, "usage after refused consumptions")
	_, err = s.ConsumeToken(ctx, live.Hash, at(12))
	wantErr(t, err, nv.ErrConsumed, "ConsumeToken after ConsumeTokenFor")

	// Expired: consumed all the same, the recorder told so, the record stored.
	got, err = s.ConsumeTokenFor(ctx, old.Hash, at(300), usageOf(&calls))
	wantErr(t, err, nv.ErrExpired, "ConsumeTokenFor(expired)")
	equal(t, got, old, "token returned with ErrExpired")
	want = append(want, nv.UsageRecord{At: at(5), ClientID: old.ClientID, Event: nv.UsageAPICall, Operation: old.Hash,
		Purpose: old.Purpose, Scopes: old.Scopes, Result: nv.ErrExpired.Error(), Source: old.Source})
	equal(t, allUsage(t, s), want, "usage after an expired consumption")
	_, err = s.ConsumeTokenFor(ctx, old.Hash, at(0), usageOf(&calls))
	wantErr(t, err, nv.ErrConsumed, "ConsumeTokenFor(expired, twice)")

	// A recorder that declines: the token is consumed, nothing stored.
	_, err = s.ConsumeTokenFor(ctx, quiet.Hash, at(10), func(nv.AccessToken, error) (nv.UsageRecord, bool) {
		return nv.UsageRecord{At: at(5), ClientID: "declined"}, false
	})
	must(t, err, "ConsumeTokenFor(declined)")
	_, err = s.ConsumeToken(ctx, quiet.Hash, at(11))
	wantErr(t, err, nv.ErrConsumed, "ConsumeToken after a declined record")
	equal(t, allUsage(t, s), want, "usage after a declined record")
}

// testConsumeTokenForConcurrent: several tokens, each raced by several
// callers at once (on the embedded store, winners and losers of the same
// token share batches): exactly one caller wins each token, and each token
// has exactly one record, the winner's.
func testConsumeTokenForConcurrent(t *testing.T, s nv.Store) {
	ctx := t.Context()
	mustGrant(t, s, "g-1")
	const tokens, callers = 8, 5
	hashes := make([]string, tokens)
	for i := range hashes {
		hashes[i] = "h-race-" + string(rune('a'+i))
		must(t, s.SaveToken(ctx, token(hashes[i], "g-1", at(300))), "SaveToken")
	}
	var (
		calls atomic.Int64
		mu    sync.Mutex
		won   = map[string]int{}
		next  atomic.Int64
	)
	errs := race(tokens*callers, func() error {
		h := hashes[int(next.Add(1)-1)%tokens]
		_, err := s.ConsumeTokenFor(ctx, h, at(1), usageOf(&calls))
		if err == nil {
			mu.Lock()
			won[h]++
			mu.Unlock()
		} else if !errors.Is(err, nv.ErrConsumed) {
			t.Errorf("loser of %s got %v, want %v", h, err, nv.ErrConsumed)
		}
		return err
	})
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
		}
	}
	if wins != tokens {
		t.Errorf("%d callers won, want %d (one per token)", wins, tokens)
	}
	for _, h := range hashes {
		if won[h] != 1 {
			t.Errorf("token %s won %d times, want 1", h, won[h])
		}
	}
	var recorded []string
	for _, r := range allUsage(t, s) {
		recorded = append(recorded, r.Operation)
	}
	sort.Strings(recorded)
	equal(t, recorded, hashes, "one usage record per token")
}
