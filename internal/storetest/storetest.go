// Package storetest is the conformance suite every nv.Store backend must
// pass: a backend's tests call Run with a function that opens a fresh,
// empty store.
//
// The suite uses explicit times (whole seconds, so that a backend keeping
// microseconds passes too) and never sleeps; no method reads a clock of
// its own, so every expiry is decided by the time the caller passes. Byte
// fields (JWKS, Data, PrivateJWK) must come back byte for byte.
package storetest

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

// Run runs the conformance suite. open must return a new, empty store for
// each call; Run closes it when the sub-test ends.
func Run(t *testing.T, open func(t *testing.T) nv.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s nv.Store)
	}{
		{"Clients", testClients},
		{"SigningKeys", testSigningKeys},
		{"JTI", testJTI},
		{"JTIPerIssuer", testJTIPerIssuer},
		{"JTIUntilExpiry", testJTIUntilExpiry},
		{"AuthSessions", testAuthSessions},
		{"Grants", testGrants},
		{"RedeemGrant", testRedeemGrant},
		{"RedeemGrantExpired", testRedeemGrantExpired},
		{"RedeemGrantConcurrent", testRedeemGrantConcurrent},
		{"RevokeGrant", testRevokeGrant},
		{"RevokeBeforeSaveToken", testRevokeBeforeSaveToken},
		{"SaveTokenVsRevokeConcurrent", testSaveTokenVsRevokeConcurrent},
		{"IssueToken", testIssueToken},
		{"IssueTokenReplayedJTI", testIssueTokenReplayedJTI},
		{"IssueTokenRefused", testIssueTokenRefused},
		{"IssueTokenConcurrent", testIssueTokenConcurrent},
		{"IssueTokenVsRevokeConcurrent", testIssueTokenVsRevokeConcurrent},
		{"IssueTokenMixedBatch", testIssueTokenMixedBatch},
		{"Tokens", testTokens},
		{"TokenExpired", testTokenExpired},
		{"ConsumeTokenConcurrent", testConsumeTokenConcurrent},
		{"ConsumeTokenFor", testConsumeTokenFor},
		{"ConsumeTokenForConcurrent", testConsumeTokenForConcurrent},
		{"StaticRoutes", testStaticRoutes},
		{"NetworkSessionStart", testSessionStart},
		{"NetworkSessionStop", testSessionStop},
		{"NetworkSessionUpsert", testSessionUpsert},
		{"NetworkSessionUpsertOtherClient", testSessionUpsertOtherClient},
		{"NetworkSessionStopOtherClient", testSessionStopOtherClient},
		{"NetworkSessionPurgeClient", testSessionPurgeClient},
		{"NetworkSessionNoClientAdopted", testSessionNoClientAdopted},
		{"NetworkSessionIPv6", testSessionIPv6},
		{"NetworkSessionAnyPrefixLength", testSessionAnyPrefixLength},
		{"NetworkSessionNotBefore", testSessionNotBefore},
		{"NetworkSessionExpire", testSessionExpire},
		{"NetworkSessionExpireEveryClient", testSessionExpireEveryClient},
		{"PortBlocks", testPortBlocks},
		{"DailyQuota", testDailyQuota},
		{"DailyQuotaConcurrent", testDailyQuotaConcurrent},
		{"DailyQuotaCollect", testDailyQuotaCollect},
		{"UsageRecords", testUsageRecords},
		{"Collect", testCollect},
		{"Ping", testPing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.fn(t, s)
		})
	}
}

// base is the reference time of the suite.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(seconds int) time.Time { return base.Add(time.Duration(seconds) * time.Second) }

// must fails the test at once on an unexpected error.
func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantErr checks that err is (or wraps) want.
func wantErr(t *testing.T, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error %v, want %v", what, err, want)
	}
}

// equal compares got and want after normalizing times (instant only) and
// empty slices (nil or not).
func equal(t *testing.T, got, want any, what string) {
	t.Helper()
	g, w := normalize(reflect.ValueOf(got)), normalize(reflect.ValueOf(want))
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

var timeType = reflect.TypeOf(time.Time{})

// normalize returns a comparable copy of v: times as Unix nanoseconds
// (the zero time as 0) and empty slices as nil.
func normalize(v reflect.Value) any {
	switch {
	case v.Type() == timeType:
		tm := v.Interface().(time.Time)
		if tm.IsZero() {
			return int64(0)
		}
		return tm.UnixNano()
	case v.Kind() == reflect.Struct && allExported(v.Type()):
		fields := make([]any, v.NumField())
		for i := range fields {
			fields[i] = normalize(v.Field(i))
		}
		return fields
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() != reflect.Uint8:
		if v.Len() == 0 {
			return nil
		}
		elems := make([]any, v.Len())
		for i := range elems {
			elems[i] = normalize(v.Index(i))
		}
		return elems
	case v.Kind() == reflect.Slice: // []byte
		if v.Len() == 0 {
			return nil
		}
		return string(v.Bytes())
	default:
		return v.Interface()
	}
}

func allExported(t reflect.Type) bool {
	for i := range t.NumField() {
		if !t.Field(i).IsExported() {
			return false
		}
	}
	return true
}

// race runs fn from n goroutines released together and returns their
// errors.
func race(n int, fn func() error) []error {
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn()
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// exactlyOneWins checks that one error is nil and all the others are want.
func exactlyOneWins(t *testing.T, errs []error, want error) {
	t.Helper()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, want):
			t.Errorf("loser got %v, want %v", err, want)
		}
	}
	if wins != 1 {
		t.Errorf("%d of %d callers won, want exactly 1", wins, len(errs))
	}
}

func testClients(t *testing.T, s nv.Store) {
	ctx := t.Context()
	_, err := s.Client(ctx, "nobody")
	wantErr(t, err, nv.ErrNotFound, "Client(unknown)")
	wantErr(t, s.DeleteClient(ctx, "nobody"), nv.ErrNotFound, "DeleteClient(unknown)")
	cs, err := s.Clients(ctx)
	must(t, err, "Clients")
	if len(cs) != 0 {
		t.Fatalf("Clients of an empty store: %d", len(cs))
	}

	b := nv.Client{
		ID:           "app-b",
		RedirectURIs: []string{"https://b.example/cb", "https://b.example/cb2"},
		JWKS:         []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"x","y":"y"}]}`),
		Scopes:       []string{nv.ScopeOpenID, nv.ScopeVerify},
		Purposes:     []string{"dpv:FraudPreventionAndDetection"},
		RequirePKCE:  true,
		QuotaPerDay:  1_000_000,
		CreatedAt:    at(0),
	}
	a := nv.Client{ID: "app-a", RedirectURIs: []string{"https://a.example/cb"}, Scopes: []string{nv.ScopeOpenID}, CreatedAt: at(1)}
	must(t, s.PutClient(ctx, b), "PutClient(b)")
	must(t, s.PutClient(ctx, a), "PutClient(a)")
	got, err := s.Client(ctx, b.ID)
	must(t, err, "Client(b)")
	equal(t, got, b, "Client(b)")

	// Put replaces.
	b.Scopes = append(b.Scopes, nv.ScopeDevicePhoneNumber)
	b.RedirectURIs = b.RedirectURIs[:1]
	b.RequirePKCE = false
	b.QuotaPerDay = 0
	must(t, s.PutClient(ctx, b), "PutClient(b again)")
	got, err = s.Client(ctx, b.ID)
	must(t, err, "Client(b) after replace")
	equal(t, got, b, "Client(b) after replace")

	cs, err = s.Clients(ctx)
	must(t, err, "Clients")
	if len(cs) != 2 {
		t.Fatalf("Clients: %d clients, want 2", len(cs))
	}
	slices.SortFunc(cs, func(x, y nv.Client) int { return cmpString(x.ID, y.ID) })
	equal(t, cs, []nv.Client{a, b}, "Clients")

	must(t, s.DeleteClient(ctx, a.ID), "DeleteClient(a)")
	_, err = s.Client(ctx, a.ID)
	wantErr(t, err, nv.ErrNotFound, "Client after delete")
	wantErr(t, s.DeleteClient(ctx, a.ID), nv.ErrNotFound, "DeleteClient twice")
	if _, err := s.Client(ctx, b.ID); err != nil {
		t.Errorf("Client(b) after deleting a: %v", err)
	}
}

func cmpString(x, y string) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func testSigningKeys(t *testing.T, s nv.Store) {
	ctx := t.Context()
	ks, err := s.SigningKeys(ctx)
	must(t, err, "SigningKeys")
	if len(ks) != 0 {
		t.Fatalf("SigningKeys of an empty store: %d", len(ks))
	}
	newer := nv.SigningKey{ID: "k2", Algorithm: "EdDSA", PrivateJWK: []byte(`{"kty":"OKP","d":"2"}`), CreatedAt: at(60)}
	older := nv.SigningKey{ID: "k1", Algorithm: "ES256", PrivateJWK: []byte(`{"kty":"EC","d":"1"}`), CreatedAt: at(0)}
	must(t, s.AddSigningKey(ctx, newer), "AddSigningKey(newer)")
	must(t, s.AddSigningKey(ctx, older), "AddSigningKey(older)")
	dup := older
	dup.PrivateJWK = []byte(`{"other":true}`)
	wantErr(t, s.AddSigningKey(ctx, dup), nv.ErrAlreadyExists, "AddSigningKey(duplicate id)")

	ks, err = s.SigningKeys(ctx)
	must(t, err, "SigningKeys")
	equal(t, ks, []nv.SigningKey{older, newer}, "SigningKeys (oldest first)")
}

func testJTI(t *testing.T, s nv.Store) {
	ctx := t.Context()
	now, live := at(0), at(3600)
	must(t, s.ConsumeJTI(ctx, "app-a", "jti-1", live, now), "ConsumeJTI(new)")
	wantErr(t, s.ConsumeJTI(ctx, "app-a", "jti-1", live, now), nv.ErrConsumed, "ConsumeJTI(replay)")
	wantErr(t, s.ConsumeJTI(ctx, "app-a", "jti-1", live.Add(time.Hour), now), nv.ErrConsumed, "ConsumeJTI(replay, later expiry)")
	must(t, s.ConsumeJTI(ctx, "app-a", "jti-2", live, now), "ConsumeJTI(other jti)")

	// A jti whose record has expired may be used again, and is then
	// recorded anew.
	gone := at(-3600)
	must(t, s.ConsumeJTI(ctx, "app-a", "jti-old", gone, now), "ConsumeJTI(already expired)")
	must(t, s.ConsumeJTI(ctx, "app-a", "jti-old", live, now), "ConsumeJTI(after expiry)")
	wantErr(t, s.ConsumeJTI(ctx, "app-a", "jti-old", live, now), nv.ErrConsumed, "ConsumeJTI(replay after reuse)")

	errs := race(20, func() error { return s.ConsumeJTI(ctx, "app-a", "jti-race", live, now) })
	exactlyOneWins(t, errs, nv.ErrConsumed)
}

// testJTIPerIssuer: single use is per issuer, so one client cannot burn
// another client's jti by using it first.
func testJTIPerIssuer(t *testing.T, s nv.Store) {
	ctx := t.Context()
	now, live := at(0), at(300)
	must(t, s.ConsumeJTI(ctx, "app-a", "shared", live, now), "ConsumeJTI(app-a)")
	must(t, s.ConsumeJTI(ctx, "app-b", "shared", live, now), "ConsumeJTI(app-b, same jti)")
	wantErr(t, s.ConsumeJTI(ctx, "app-a", "shared", live, now), nv.ErrConsumed, "ConsumeJTI(app-a replay)")
	wantErr(t, s.ConsumeJTI(ctx, "app-b", "shared", live, now), nv.ErrConsumed, "ConsumeJTI(app-b replay)")
	// Issuer and jti are not concatenated: ("a", "b:c") and ("a:b", "c") differ.
	must(t, s.ConsumeJTI(ctx, "a", "b:c", live, now), "ConsumeJTI(a, b:c)")
	must(t, s.ConsumeJTI(ctx, "a:b", "c", live, now), "ConsumeJTI(a:b, c)")
	errs := race(20, func() error { return s.ConsumeJTI(ctx, "app-c", "shared", live, now) })
	exactlyOneWins(t, errs, nv.ErrConsumed)
}

// testJTIUntilExpiry: a jti is refused at every now before its expiresAt,
// and accepted again from expiresAt on.
func testJTIUntilExpiry(t *testing.T, s nv.Store) {
	ctx := t.Context()
	expires := at(310)
	must(t, s.ConsumeJTI(ctx, "app-a", "j", expires, at(0)), "ConsumeJTI")
	for _, now := range []time.Time{at(1), at(200), at(309)} {
		wantErr(t, s.ConsumeJTI(ctx, "app-a", "j", at(600), now), nv.ErrConsumed,
			fmt.Sprintf("ConsumeJTI at %s, before expiry", now.Sub(base)))
	}
	must(t, s.ConsumeJTI(ctx, "app-a", "j", at(620), at(310)), "ConsumeJTI at expiry")
	wantErr(t, s.ConsumeJTI(ctx, "app-a", "j", at(900), at(619)), nv.ErrConsumed, "ConsumeJTI before the new expiry")
}

func testAuthSessions(t *testing.T, s nv.Store) {
	ctx := t.Context()
	now := at(0)
	_, err := s.AuthSession(ctx, "nope", now)
	wantErr(t, err, nv.ErrNotFound, "AuthSession(unknown)")

	a := nv.AuthSession{ID: "as-1", Data: []byte(`{"state":"xyz"}`), ExpiresAt: at(60)}
	must(t, s.SaveAuthSession(ctx, a), "SaveAuthSession")
	got, err := s.AuthSession(ctx, a.ID, now)
	must(t, err, "AuthSession")
	equal(t, got, a, "AuthSession")

	a.Data = []byte(`{"state":"updated"}`)
	must(t, s.SaveAuthSession(ctx, a), "SaveAuthSession(replace)")
	got, err = s.AuthSession(ctx, a.ID, at(59))
	must(t, err, "AuthSession after replace")
	equal(t, got, a, "AuthSession after replace")
	_, err = s.AuthSession(ctx, a.ID, at(60))
	wantErr(t, err, nv.ErrNotFound, "AuthSession at its expiry")

	expired := nv.AuthSession{ID: "as-old", Data: []byte("x"), ExpiresAt: at(-3600)}
	must(t, s.SaveAuthSession(ctx, expired), "SaveAuthSession(expired)")
	_, err = s.AuthSession(ctx, expired.ID, now)
	wantErr(t, err, nv.ErrNotFound, "AuthSession(expired)")
}

func testGrants(t *testing.T, s nv.Store) {
	ctx := t.Context()
	g := nv.Grant{ID: "g-1", AuthCode: "code-1", Data: []byte(`{"client":"a"}`), ExpiresAt: at(300)}
	must(t, s.CreateGrant(ctx, g), "CreateGrant")

	got, err := s.Grant(ctx, g.ID)
	must(t, err, "Grant")
	equal(t, got, g, "Grant")
	got, err = s.GrantByAuthCode(ctx, g.AuthCode)
	must(t, err, "GrantByAuthCode")
	equal(t, got, g, "GrantByAuthCode")

	_, err = s.Grant(ctx, "g-unknown")
	wantErr(t, err, nv.ErrNotFound, "Grant(unknown)")
	_, err = s.GrantByAuthCode(ctx, "code-unknown")
	wantErr(t, err, nv.ErrNotFound, "GrantByAuthCode(unknown)")

	wantErr(t, s.CreateGrant(ctx, nv.Grant{ID: g.ID, AuthCode: "code-other", ExpiresAt: at(300)}),
		nv.ErrAlreadyExists, "CreateGrant(same id)")
	wantErr(t, s.CreateGrant(ctx, nv.Grant{ID: "g-other", AuthCode: g.AuthCode, ExpiresAt: at(300)}),
		nv.ErrAlreadyExists, "CreateGrant(same code)")

	// Grants without a code do not collide with one another.
	must(t, s.CreateGrant(ctx, nv.Grant{ID: "g-nocode-1", ExpiresAt: at(300)}), "CreateGrant(no code 1)")
	must(t, s.CreateGrant(ctx, nv.Grant{ID: "g-nocode-2", ExpiresAt: at(300)}), "CreateGrant(no code 2)")
	_, err = s.GrantByAuthCode(ctx, "")
	wantErr(t, err, nv.ErrNotFound, "GrantByAuthCode(empty)")
}

func testRedeemGrant(t *testing.T, s nv.Store) {
	ctx := t.Context()
	g := nv.Grant{ID: "g-1", AuthCode: "code-1", Data: []byte("before"), ExpiresAt: at(300)}
	must(t, s.CreateGrant(ctx, g), "CreateGrant")

	must(t, s.RedeemGrant(ctx, g.ID, []byte("after"), at(10)), "RedeemGrant")
	wantErr(t, s.RedeemGrant(ctx, g.ID, []byte("again"), at(11)), nv.ErrConsumed, "RedeemGrant(twice)")
	wantErr(t, s.RedeemGrant(ctx, "g-unknown", nil, at(10)), nv.ErrNotFound, "RedeemGrant(unknown)")

	g.CodeConsumed = true
	g.Data = []byte("after")
	got, err := s.Grant(ctx, g.ID)
	must(t, err, "Grant after redeem")
	equal(t, got, g, "Grant after redeem")
	// A consumed code still finds its grant (the engine detects the replay
	// and revokes what was issued).
	got, err = s.GrantByAuthCode(ctx, g.AuthCode)
	must(t, err, "GrantByAuthCode after redeem")
	equal(t, got, g, "GrantByAuthCode after redeem")
}

func testRedeemGrantConcurrent(t *testing.T, s nv.Store) {
	ctx := t.Context()
	must(t, s.CreateGrant(ctx, nv.Grant{ID: "g-race", AuthCode: "code-race", ExpiresAt: at(300)}), "CreateGrant")
	var n int
	var mu sync.Mutex
	errs := race(20, func() error {
		mu.Lock()
		n++
		data := fmt.Appendf(nil, "redeemer %d", n)
		mu.Unlock()
		return s.RedeemGrant(ctx, "g-race", data, at(1))
	})
	exactlyOneWins(t, errs, nv.ErrConsumed)
	got, err := s.Grant(ctx, "g-race")
	must(t, err, "Grant")
	if !got.CodeConsumed {
		t.Error("grant not marked consumed")
	}
}

func testRevokeGrant(t *testing.T, s nv.Store) {
	ctx := t.Context()
	g := nv.Grant{ID: "g-1", AuthCode: "code-1", ExpiresAt: at(300)}
	other := nv.Grant{ID: "g-2", AuthCode: "code-2", ExpiresAt: at(300)}
	must(t, s.CreateGrant(ctx, g), "CreateGrant(g)")
	must(t, s.CreateGrant(ctx, other), "CreateGrant(other)")
	for _, tok := range []nv.AccessToken{
		token("h-g-1", g.ID, at(300)),
		token("h-g-2", g.ID, at(300)),
		token("h-other", other.ID, at(300)),
		token("h-sandbox", "", at(300)),
	} {
		must(t, s.SaveToken(ctx, tok), "SaveToken("+tok.Hash+")")
	}

	must(t, s.RevokeGrant(ctx, g.ID), "RevokeGrant")
	for _, h := range []string{"h-g-1", "h-g-2"} {
		_, err := s.Token(ctx, h)
		wantErr(t, err, nv.ErrNotFound, "Token of revoked grant")
		_, err = s.ConsumeToken(ctx, h, at(1))
		wantErr(t, err, nv.ErrNotFound, "ConsumeToken of revoked grant")
	}
	for _, h := range []string{"h-other", "h-sandbox"} {
		if _, err := s.Token(ctx, h); err != nil {
			t.Errorf("Token(%s) of another grant after revoke: %v", h, err)
		}
	}
	_, err := s.GrantByAuthCode(ctx, g.AuthCode)
	wantErr(t, err, nv.ErrNotFound, "GrantByAuthCode(revoked)")
	wantErr(t, s.RedeemGrant(ctx, g.ID, nil, at(1)), nv.ErrNotFound, "RedeemGrant(revoked)")
	if got, err := s.Grant(ctx, g.ID); err == nil && !got.Revoked {
		t.Error("Grant(revoked) not marked revoked")
	} else if err != nil && !errors.Is(err, nv.ErrNotFound) {
		t.Errorf("Grant(revoked): %v", err)
	}
	if _, err := s.GrantByAuthCode(ctx, other.AuthCode); err != nil {
		t.Errorf("GrantByAuthCode(other) after revoke: %v", err)
	}

	must(t, s.RevokeGrant(ctx, "g-unknown"), "RevokeGrant(unknown)")
	must(t, s.RevokeGrant(ctx, g.ID), "RevokeGrant(twice)")
}

// testRedeemGrantExpired: a grant whose ExpiresAt is not after now cannot
// be redeemed, and stays unredeemed.
func testRedeemGrantExpired(t *testing.T, s nv.Store) {
	ctx := t.Context()
	g := nv.Grant{ID: "g-1", AuthCode: "code-1", Data: []byte("before"), ExpiresAt: at(60)}
	must(t, s.CreateGrant(ctx, g), "CreateGrant")
	wantErr(t, s.RedeemGrant(ctx, g.ID, []byte("at expiry"), at(60)), nv.ErrNotFound, "RedeemGrant at expiry")
	wantErr(t, s.RedeemGrant(ctx, g.ID, []byte("after expiry"), at(61)), nv.ErrNotFound, "RedeemGrant after expiry")
	got, err := s.Grant(ctx, g.ID)
	must(t, err, "Grant")
	equal(t, got, g, "Grant after refused redemptions")
	must(t, s.RedeemGrant(ctx, g.ID, []byte("in time"), at(59)), "RedeemGrant before expiry")
}

// testRevokeBeforeSaveToken is the interleaving of a lost code race: one
// redemption wins (RedeemGrant), a concurrent one loses and revokes the
// grant (RevokeGrant) before the winner stores its token. The token must
// not be stored: SaveToken answers ErrNotFound and nothing is left.
func testRevokeBeforeSaveToken(t *testing.T, s nv.Store) {
	ctx := t.Context()
	g := nv.Grant{ID: "g-1", AuthCode: "code-1", ExpiresAt: at(600)}
	must(t, s.CreateGrant(ctx, g), "CreateGrant")
	must(t, s.RedeemGrant(ctx, g.ID, []byte("winner"), at(1)), "RedeemGrant(winner)")
	wantErr(t, s.RedeemGrant(ctx, g.ID, []byte("loser"), at(1)), nv.ErrConsumed, "RedeemGrant(loser)")
	must(t, s.RevokeGrant(ctx, g.ID), "RevokeGrant(loser)")

	tok := token("h-winner", g.ID, at(300))
	wantErr(t, s.SaveToken(ctx, tok), nv.ErrNotFound, "SaveToken after RevokeGrant")
	_, err := s.Token(ctx, tok.Hash)
	wantErr(t, err, nv.ErrNotFound, "Token after refused SaveToken")
	_, err = s.ConsumeToken(ctx, tok.Hash, at(2))
	wantErr(t, err, nv.ErrNotFound, "ConsumeToken after refused SaveToken")

	// A grant that does not exist (collected, never created) is refused
	// too; a token without a grant (sandbox) needs none.
	wantErr(t, s.SaveToken(ctx, token("h-nogrant", "g-unknown", at(300))), nv.ErrNotFound, "SaveToken(unknown grant)")
	must(t, s.SaveToken(ctx, token("h-sandbox", "", at(300))), "SaveToken(no grant)")
	// ErrAlreadyExists still wins over a revoked grant for a taken hash.
	other := nv.Grant{ID: "g-2", AuthCode: "code-2", ExpiresAt: at(600)}
	must(t, s.CreateGrant(ctx, other), "CreateGrant(other)")
	must(t, s.SaveToken(ctx, token("h-2", other.ID, at(300))), "SaveToken(other)")
	wantErr(t, s.SaveToken(ctx, token("h-2", other.ID, at(300))), nv.ErrAlreadyExists, "SaveToken(other, same hash)")
}

// testSaveTokenVsRevokeConcurrent runs SaveToken and RevokeGrant on the
// same grant at once, many times: whatever the order, no token of a revoked
// grant survives. Either SaveToken ran first (and RevokeGrant deleted the
// token) or it answered ErrNotFound.
func testSaveTokenVsRevokeConcurrent(t *testing.T, s nv.Store) {
	ctx := t.Context()
	for i := range 50 {
		id := fmt.Sprintf("g-%d", i)
		must(t, s.CreateGrant(ctx, nv.Grant{ID: id, AuthCode: "code-" + id, ExpiresAt: at(600)}), "CreateGrant")
		must(t, s.RedeemGrant(ctx, id, nil, at(1)), "RedeemGrant")
		var saveErr error
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			saveErr = s.SaveToken(ctx, token("h-"+id, id, at(300)))
		})
		wg.Go(func() {
			<-start
			if err := s.RevokeGrant(ctx, id); err != nil {
				t.Errorf("RevokeGrant(%s): %v", id, err)
			}
		})
		close(start)
		wg.Wait()
		if saveErr != nil && !errors.Is(saveErr, nv.ErrNotFound) {
			t.Errorf("SaveToken(%s) racing RevokeGrant: %v, want nil or ErrNotFound", id, saveErr)
		}
		if _, err := s.Token(ctx, "h-"+id); !errors.Is(err, nv.ErrNotFound) {
			t.Fatalf("round %d: token of a revoked grant is stored (Token: %v; SaveToken: %v)", i, err, saveErr)
		}
	}
}

// mustGrant creates a live grant with id, for tokens to refer to.
func mustGrant(t *testing.T, s nv.Store, id string) {
	t.Helper()
	must(t, s.CreateGrant(t.Context(), nv.Grant{ID: id, AuthCode: "code-" + id, ExpiresAt: at(3600)}), "CreateGrant("+id+")")
}

func token(hash, grantID string, expiresAt time.Time) nv.AccessToken {
	return nv.AccessToken{
		Hash:       hash,
		GrantID:    grantID,
		ClientID:   "app-a",
		MSISDN:     "+34600000001",
		Scopes:     []string{nv.ScopeOpenID, nv.ScopeVerify},
		Purpose:    "dpv:FraudPreventionAndDetection",
		AuthMethod: nv.AuthNetwork,
		Source:     "radius",
		IssuedAt:   expiresAt.Add(-300 * time.Second),
		ExpiresAt:  expiresAt,
	}
}

func testTokens(t *testing.T, s nv.Store) {
	ctx := t.Context()
	mustGrant(t, s, "g-1")
	tok := token("h-1", "g-1", at(300))
	must(t, s.SaveToken(ctx, tok), "SaveToken")
	wantErr(t, s.SaveToken(ctx, tok), nv.ErrAlreadyExists, "SaveToken(same hash)")

	got, err := s.Token(ctx, tok.Hash)
	must(t, err, "Token")
	equal(t, got, tok, "Token")
	_, err = s.Token(ctx, "h-unknown")
	wantErr(t, err, nv.ErrNotFound, "Token(unknown)")

	got, err = s.ConsumeToken(ctx, tok.Hash, at(10))
	must(t, err, "ConsumeToken")
	equal(t, got, tok, "ConsumeToken")
	_, err = s.ConsumeToken(ctx, tok.Hash, at(11))
	wantErr(t, err, nv.ErrConsumed, "ConsumeToken(twice)")
	_, err = s.ConsumeToken(ctx, "h-unknown", at(10))
	wantErr(t, err, nv.ErrNotFound, "ConsumeToken(unknown)")

	// Token still reads a consumed token.
	if _, err := s.Token(ctx, tok.Hash); err != nil {
		t.Errorf("Token after consume: %v", err)
	}

	// One second before the end is still valid.
	last := token("h-last", "", at(300))
	must(t, s.SaveToken(ctx, last), "SaveToken(last)")
	if _, err := s.ConsumeToken(ctx, last.Hash, at(299)); err != nil {
		t.Errorf("ConsumeToken one second before expiry: %v", err)
	}
}

func testTokenExpired(t *testing.T, s nv.Store) {
	ctx := t.Context()
	mustGrant(t, s, "g-1")
	for _, tt := range []struct {
		hash string
		now  time.Time
	}{
		{"h-at-expiry", at(300)}, // ExpiresAt not after now: expired
		{"h-after-expiry", at(301)},
	} {
		tok := token(tt.hash, "g-1", at(300))
		must(t, s.SaveToken(ctx, tok), "SaveToken")
		got, err := s.ConsumeToken(ctx, tok.Hash, tt.now)
		wantErr(t, err, nv.ErrExpired, "ConsumeToken("+tt.hash+")")
		equal(t, got, tok, "token returned with ErrExpired")
		_, err = s.ConsumeToken(ctx, tok.Hash, at(0))
		wantErr(t, err, nv.ErrConsumed, "ConsumeToken(expired, twice)")
	}
}

func testConsumeTokenConcurrent(t *testing.T, s nv.Store) {
	ctx := t.Context()
	mustGrant(t, s, "g-1")
	tok := token("h-race", "g-1", at(300))
	must(t, s.SaveToken(ctx, tok), "SaveToken")
	var (
		mu  sync.Mutex
		won []nv.AccessToken
	)
	errs := race(20, func() error {
		got, err := s.ConsumeToken(ctx, tok.Hash, at(1))
		if err == nil {
			mu.Lock()
			won = append(won, got)
			mu.Unlock()
		}
		return err
	})
	exactlyOneWins(t, errs, nv.ErrConsumed)
	if len(won) == 1 {
		equal(t, won[0], tok, "token of the winner")
	}
}

func testStaticRoutes(t *testing.T, s nv.Store) {
	ctx := t.Context()
	rs, err := s.StaticRoutes(ctx)
	must(t, err, "StaticRoutes")
	if len(rs) != 0 {
		t.Fatalf("StaticRoutes of an empty store: %d", len(rs))
	}
	first := []nv.StaticRoute{
		{Prefix: netip.MustParsePrefix("10.0.0.1/32"), MSISDN: "+34600000001"},
		{Prefix: netip.MustParsePrefix("10.1.0.0/16"), MSISDN: "+34600000002"},
		{Prefix: netip.MustParsePrefix("2001:db8:1:2::/64"), MSISDN: "+34600000003"},
	}
	must(t, s.ReplaceStaticRoutes(ctx, first), "ReplaceStaticRoutes")
	rs, err = s.StaticRoutes(ctx)
	must(t, err, "StaticRoutes")
	equal(t, sortRoutes(rs), sortRoutes(first), "StaticRoutes")

	second := []nv.StaticRoute{{Prefix: netip.MustParsePrefix("192.0.2.7/32"), MSISDN: "+34600000009"}}
	must(t, s.ReplaceStaticRoutes(ctx, second), "ReplaceStaticRoutes(second)")
	rs, err = s.StaticRoutes(ctx)
	must(t, err, "StaticRoutes")
	equal(t, rs, second, "StaticRoutes after replace")

	must(t, s.ReplaceStaticRoutes(ctx, nil), "ReplaceStaticRoutes(none)")
	rs, err = s.StaticRoutes(ctx)
	must(t, err, "StaticRoutes")
	if len(rs) != 0 {
		t.Errorf("StaticRoutes after replacing with none: %v", rs)
	}
}

func sortRoutes(rs []nv.StaticRoute) []nv.StaticRoute {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b nv.StaticRoute) int { return cmpString(a.Prefix.String(), b.Prefix.String()) })
	return rs
}

// session is a RADIUS session whose client entry is named after its NAS.
func session(prefix, msisdn, id, nas string, started, updated time.Time) nv.NetworkSession {
	return nv.NetworkSession{
		Client:    "client-" + nas,
		Prefix:    netip.MustParsePrefix(prefix),
		MSISDN:    nv.PhoneNumber(msisdn),
		SessionID: id,
		NAS:       nas,
		IMSI:      "214010000000001",
		StartedAt: started,
		UpdatedAt: updated,
	}
}

func sessionFor(t *testing.T, s nv.Store, addr string, notBefore time.Time) (nv.NetworkSession, error) {
	t.Helper()
	return s.SessionFor(t.Context(), netip.MustParseAddr(addr), notBefore)
}

func testSessionStart(t *testing.T, s nv.Store) {
	ctx := t.Context()
	_, err := sessionFor(t, s, "10.0.0.1", at(0))
	wantErr(t, err, nv.ErrNotFound, "SessionFor(empty store)")

	a := session("10.0.0.1/32", "+34600000001", "sess-a", "pgw-1", at(0), at(0))
	must(t, s.StartSession(ctx, a), "StartSession(a)")
	got, err := sessionFor(t, s, "10.0.0.1", at(0))
	must(t, err, "SessionFor")
	equal(t, got, a, "SessionFor")
	_, err = sessionFor(t, s, "10.0.0.2", at(0))
	wantErr(t, err, nv.ErrNotFound, "SessionFor(other address)")

	// A new Start on the same address replaces the previous holder.
	b := session("10.0.0.1/32", "+34600000002", "sess-b", "pgw-2", at(60), at(60))
	must(t, s.StartSession(ctx, b), "StartSession(b)")
	got, err = sessionFor(t, s, "10.0.0.1", at(0))
	must(t, err, "SessionFor after restart")
	equal(t, got, b, "SessionFor after restart")

	// One number may hold several addresses.
	c := session("10.0.0.3/32", "+34600000002", "sess-c", "pgw-2", at(61), at(61))
	must(t, s.StartSession(ctx, c), "StartSession(c)")
	all, err := s.NetworkSessions(ctx)
	must(t, err, "NetworkSessions")
	if len(all) != 2 {
		t.Errorf("NetworkSessions: %d sessions, want 2: %+v", len(all), all)
	}
	got, err = sessionFor(t, s, "10.0.0.3", at(0))
	must(t, err, "SessionFor(c)")
	equal(t, got, c, "SessionFor(c)")

	// The prefix is canonical: host bits are cleared.
	d := session("2001:db8:9:9::1/64", "+34600000004", "sess-d", "pgw-1", at(62), at(62))
	must(t, s.StartSession(ctx, d), "StartSession(unmasked prefix)")
	got, err = sessionFor(t, s, "2001:db8:9:9::abcd", at(0))
	must(t, err, "SessionFor(unmasked prefix)")
	if got.Prefix != netip.MustParsePrefix("2001:db8:9:9::/64") {
		t.Errorf("stored prefix %v, want 2001:db8:9:9::/64", got.Prefix)
	}
}

func testSessionStop(t *testing.T, s nv.Store) {
	ctx := t.Context()
	a := session("10.0.0.1/32", "+34600000001", "sess-a", "pgw-1", at(0), at(0))
	must(t, s.StartSession(ctx, a), "StartSession")
	p := a.Prefix

	ok, err := s.StopSession(ctx, a.Client, p, "sess-other")
	must(t, err, "StopSession(other id)")
	if ok {
		t.Error("StopSession with another session id removed the session")
	}
	if _, err := sessionFor(t, s, "10.0.0.1", at(0)); err != nil {
		t.Errorf("SessionFor after a non-matching Stop: %v", err)
	}

	ok, err = s.StopSession(ctx, a.Client, p, "sess-a")
	must(t, err, "StopSession")
	if !ok {
		t.Error("StopSession with the session id did not report a removal")
	}
	_, err = sessionFor(t, s, "10.0.0.1", at(0))
	wantErr(t, err, nv.ErrNotFound, "SessionFor after Stop")

	ok, err = s.StopSession(ctx, a.Client, p, "sess-a")
	must(t, err, "StopSession(twice)")
	if ok {
		t.Error("second StopSession reported a removal")
	}
}

func testSessionUpsert(t *testing.T, s nv.Store) {
	ctx := t.Context()
	// Interim-Update for an unknown session creates it (e.g. after a restart
	// of the server that lost the Start).
	a := session("10.0.0.1/32", "+34600000001", "sess-a", "pgw-1", at(0), at(0))
	must(t, s.UpsertSession(ctx, a), "UpsertSession(new)")
	got, err := sessionFor(t, s, "10.0.0.1", at(0))
	must(t, err, "SessionFor")
	equal(t, got, a, "SessionFor after upsert")

	// The same session: updated, StartedAt kept.
	interim := a
	interim.StartedAt = at(50)
	interim.UpdatedAt = at(60)
	must(t, s.UpsertSession(ctx, interim), "UpsertSession(interim)")
	got, err = sessionFor(t, s, "10.0.0.1", at(60))
	must(t, err, "SessionFor after interim")
	want := a
	want.UpdatedAt = at(60)
	equal(t, got, want, "SessionFor after interim (StartedAt kept)")

	// Another session of the same client on the address: replaced whole.
	b := session("10.0.0.1/32", "+34600000002", "sess-b", "pgw-1", at(100), at(120))
	must(t, s.UpsertSession(ctx, b), "UpsertSession(other session)")
	got, err = sessionFor(t, s, "10.0.0.1", at(0))
	must(t, err, "SessionFor after other session")
	equal(t, got, b, "SessionFor after other session")

	// After a Stop, an Interim recreates the session.
	ok, err := s.StopSession(ctx, b.Client, b.Prefix, b.SessionID)
	must(t, err, "StopSession")
	if !ok {
		t.Fatal("StopSession removed nothing")
	}
	b.UpdatedAt = at(180)
	must(t, s.UpsertSession(ctx, b), "UpsertSession(after stop)")
	got, err = sessionFor(t, s, "10.0.0.1", at(0))
	must(t, err, "SessionFor after recreate")
	equal(t, got, b, "SessionFor after recreate")
}

// An Interim-Update from one RADIUS client never touches the session
// another client holds on the same prefix, whatever its session id.
func testSessionUpsertOtherClient(t *testing.T, s nv.Store) {
	ctx := t.Context()
	a := session("10.0.0.1/32", "+34600000001", "sess-a", "pgw-1", at(0), at(0))
	must(t, s.StartSession(ctx, a), "StartSession(a)")
	for _, id := range []string{"sess-a", "sess-x"} {
		forged := session("10.0.0.1/32", "+34600000666", id, "pgw-2", at(10), at(10))
		wantErr(t, s.UpsertSession(ctx, forged), nv.ErrNotFound, "UpsertSession(other client, "+id+")")
		got, err := sessionFor(t, s, "10.0.0.1", at(0))
		must(t, err, "SessionFor after other client's upsert")
		equal(t, got, a, "session after other client's upsert")
	}
	// A Start from another client takes the address over (it was reassigned).
	b := session("10.0.0.1/32", "+34600000002", "sess-b", "pgw-2", at(20), at(20))
	must(t, s.StartSession(ctx, b), "StartSession(other client)")
	got, err := sessionFor(t, s, "10.0.0.1", at(0))
	must(t, err, "SessionFor after other client's start")
	equal(t, got, b, "session after other client's start")
	// Now the first client's Interim is the foreign one.
	a.UpdatedAt = at(30)
	wantErr(t, s.UpsertSession(ctx, a), nv.ErrNotFound, "UpsertSession(previous holder)")
	got, err = sessionFor(t, s, "10.0.0.1", at(0))
	must(t, err, "SessionFor")
	equal(t, got, b, "session after previous holder's upsert")
}

// A Stop from one client never removes another client's session, even with
// the right session id.
func testSessionStopOtherClient(t *testing.T, s nv.Store) {
	ctx := t.Context()
	a := session("10.0.0.1/32", "+34600000001", "sess-a", "pgw-1", at(0), at(0))
	must(t, s.StartSession(ctx, a), "StartSession")
	ok, err := s.StopSession(ctx, "client-pgw-2", a.Prefix, a.SessionID)
	must(t, err, "StopSession(other client)")
	if ok {
		t.Error("StopSession from another client reported a removal")
	}
	got, err := sessionFor(t, s, "10.0.0.1", at(0))
	must(t, err, "SessionFor after other client's stop")
	equal(t, got, a, "session after other client's stop")
	ok, err = s.StopSession(ctx, a.Client, a.Prefix, a.SessionID)
	must(t, err, "StopSession(own client)")
	if !ok {
		t.Error("StopSession from the session's client removed nothing")
	}
}

// A session without a client (recorded before sessions had one) is adopted
// by the first client whose Interim-Update names its prefix, and a Stop with
// its session id ends it; once adopted, it is that client's.
func testSessionNoClientAdopted(t *testing.T, s nv.Store) {
	ctx := t.Context()
	legacy := session("10.0.0.1/32", "+34600000001", "sess-a", "pgw-1", at(0), at(0))
	legacy.Client = ""
	must(t, s.StartSession(ctx, legacy), "StartSession(no client)")
	interim := session("10.0.0.1/32", "+34600000001", "sess-a", "pgw-1", at(0), at(10))
	must(t, s.UpsertSession(ctx, interim), "UpsertSession(adopts)")
	got, err := sessionFor(t, s, "10.0.0.1", at(0))
	must(t, err, "SessionFor after adoption")
	equal(t, got, interim, "session after adoption")
	other := session("10.0.0.1/32", "+34600000666", "sess-a", "pgw-2", at(0), at(20))
	wantErr(t, s.UpsertSession(ctx, other), nv.ErrNotFound, "UpsertSession(another client after adoption)")

	legacy2 := session("10.0.0.2/32", "+34600000002", "sess-b", "pgw-1", at(0), at(0))
	legacy2.Client = ""
	must(t, s.StartSession(ctx, legacy2), "StartSession(no client)")
	ok, err := s.StopSession(ctx, "client-pgw-1", legacy2.Prefix, "sess-other")
	must(t, err, "StopSession(no client, other id)")
	if ok {
		t.Error("a Stop with another session id ended a session without client")
	}
	ok, err = s.StopSession(ctx, "client-pgw-1", legacy2.Prefix, "sess-b")
	must(t, err, "StopSession(no client)")
	if !ok {
		t.Error("a Stop with the session id did not end a session without client")
	}
}

// PurgeClient (Accounting-On/Off) removes only the client's sessions last
// updated strictly before the given time.
func testSessionPurgeClient(t *testing.T, s nv.Store) {
	ctx := t.Context()
	for _, ns := range []nv.NetworkSession{
		session("10.0.0.1/32", "+34600000001", "s1", "pgw-1", at(0), at(0)),
		session("10.0.0.2/32", "+34600000002", "s2", "pgw-1", at(0), at(99)),
		session("2001:db8::/64", "+34600000002", "s3", "pgw-1", at(0), at(50)),
		session("10.0.0.3/32", "+34600000003", "s4", "pgw-2", at(0), at(0)),
		session("10.0.0.4/32", "+34600000004", "s5", "pgw-1", at(100), at(100)), // at the On
		session("10.0.0.5/32", "+34600000005", "s6", "pgw-1", at(101), at(101)), // after it
	} {
		must(t, s.StartSession(ctx, ns), "StartSession("+ns.SessionID+")")
	}
	n, err := s.PurgeClient(ctx, "client-pgw-1", at(100))
	must(t, err, "PurgeClient")
	if n != 3 {
		t.Errorf("PurgeClient removed %d, want 3", n)
	}
	for _, addr := range []string{"10.0.0.1", "10.0.0.2", "2001:db8::1"} {
		_, err := sessionFor(t, s, addr, at(0))
		wantErr(t, err, nv.ErrNotFound, "SessionFor("+addr+") after purge")
	}
	for _, addr := range []string{"10.0.0.3", "10.0.0.4", "10.0.0.5"} {
		if _, err := sessionFor(t, s, addr, at(0)); err != nil {
			t.Errorf("SessionFor(%s) after purge: %v (another client's, or updated at or after the purge)", addr, err)
		}
	}
	n, err = s.PurgeClient(ctx, "client-unknown", at(1000))
	must(t, err, "PurgeClient(unknown)")
	if n != 0 {
		t.Errorf("PurgeClient(unknown) removed %d", n)
	}
	// A session without a client (another source) is not a client's.
	none := session("10.0.0.9/32", "+34600000009", "s9", "", at(0), at(0))
	none.Client = ""
	must(t, s.StartSession(ctx, none), "StartSession(no client)")
	n, err = s.PurgeClient(ctx, "client-pgw-1", at(1000))
	must(t, err, "PurgeClient(all of pgw-1)")
	if n != 2 {
		t.Errorf("PurgeClient(all of pgw-1) removed %d, want 2", n)
	}
	if _, err := sessionFor(t, s, "10.0.0.9", at(0)); err != nil {
		t.Errorf("session without client after purge: %v", err)
	}
}

// SessionFor covers every prefix length and prefers the most specific.
func testSessionAnyPrefixLength(t *testing.T, s nv.Store) {
	ctx := t.Context()
	var sessions []nv.NetworkSession
	for i, p := range []string{
		"2001:db8:1::/48", "2001:db8:1:100::/56", "2001:db8:1:110::/60",
		"2001:db8:1:111::/64", "2001:db8:1:111:0:0:0:8/125", "2001:db8:1:111::1/128",
		"2001:db9:e000::/35", "2001:db8:3:0:8000::/65", "2001:db8:4::/127",
		"198.51.100.0/24", "198.51.100.128/25", "198.51.100.200/32", "203.0.112.0/23",
	} {
		ns := session(p, fmt.Sprintf("+346000001%02d", i), fmt.Sprintf("s%d", i), "pgw-1", at(0), at(0))
		sessions = append(sessions, ns)
		must(t, s.StartSession(ctx, ns), "StartSession("+p+")")
	}
	for _, tt := range []struct {
		addr string
		want int // index into sessions, -1 for none
	}{
		{"2001:db8:1:ffff::1", 0},
		{"2001:db8:1:1ff::1", 1},
		{"2001:db8:1:11f::1", 2},
		{"2001:db8:1:111::2", 3},
		{"2001:db8:1:111::f", 4},
		{"2001:db8:1:111::1", 5},
		{"2001:db9:ffff:ffff::1", 6},
		{"2001:db8:3:0:ffff::1", 7},
		{"2001:db8:3:0:7fff::1", -1},
		{"2001:db8:4::1", 8},
		{"2001:db8:4::2", -1},
		{"198.51.100.1", 9},
		{"198.51.100.129", 10},
		{"198.51.100.200", 11},
		{"::ffff:198.51.100.200", 11},
		{"203.0.113.255", 12},
		{"203.0.114.1", -1},
	} {
		got, err := sessionFor(t, s, tt.addr, at(0))
		if tt.want < 0 {
			wantErr(t, err, nv.ErrNotFound, "SessionFor("+tt.addr+")")
			continue
		}
		if err != nil {
			t.Errorf("SessionFor(%s): %v, want %s", tt.addr, err, sessions[tt.want].Prefix)
			continue
		}
		equal(t, got, sessions[tt.want], "SessionFor("+tt.addr+")")
	}
}

func testSessionIPv6(t *testing.T, s nv.Store) {
	ctx := t.Context()
	a := session("2001:db8:aa:bb::/64", "+34600000001", "s6", "pgw-1", at(0), at(0))
	must(t, s.StartSession(ctx, a), "StartSession")
	for _, addr := range []string{"2001:db8:aa:bb::1", "2001:db8:aa:bb:ffff:ffff:ffff:ffff", "2001:db8:aa:bb::"} {
		got, err := sessionFor(t, s, addr, at(0))
		if err != nil {
			t.Errorf("SessionFor(%s): %v", addr, err)
			continue
		}
		equal(t, got, a, "SessionFor("+addr+")")
	}
	for _, addr := range []string{"2001:db8:aa:bc::1", "2001:db8:aa::1", "10.0.0.1"} {
		_, err := sessionFor(t, s, addr, at(0))
		wantErr(t, err, nv.ErrNotFound, "SessionFor("+addr+") outside the prefix")
	}

	// An IPv4-mapped IPv6 address finds the IPv4 session.
	v4 := session("192.0.2.1/32", "+34600000002", "s4", "pgw-1", at(0), at(0))
	must(t, s.StartSession(ctx, v4), "StartSession(v4)")
	got, err := sessionFor(t, s, "::ffff:192.0.2.1", at(0))
	must(t, err, "SessionFor(4in6)")
	equal(t, got, v4, "SessionFor(4in6)")
}

func testSessionNotBefore(t *testing.T, s nv.Store) {
	ctx := t.Context()
	a := session("10.0.0.1/32", "+34600000001", "sess-a", "pgw-1", at(0), at(100))
	must(t, s.StartSession(ctx, a), "StartSession")
	if _, err := sessionFor(t, s, "10.0.0.1", at(100)); err != nil {
		t.Errorf("SessionFor(notBefore == UpdatedAt): %v", err)
	}
	_, err := sessionFor(t, s, "10.0.0.1", at(101))
	wantErr(t, err, nv.ErrNotFound, "SessionFor(notBefore after UpdatedAt)")
}

func testSessionExpire(t *testing.T, s nv.Store) {
	ctx := t.Context()
	old := session("10.0.0.1/32", "+34600000001", "old", "pgw-1", at(0), at(10))
	edge := session("10.0.0.2/32", "+34600000002", "edge", "pgw-1", at(0), at(20))
	fresh := session("10.0.0.3/32", "+34600000003", "fresh", "pgw-1", at(0), at(30))
	for _, ns := range []nv.NetworkSession{old, edge, fresh} {
		must(t, s.StartSession(ctx, ns), "StartSession("+ns.SessionID+")")
	}
	n, err := s.ExpireSessions(ctx, at(20))
	must(t, err, "ExpireSessions")
	if n != 1 {
		t.Errorf("ExpireSessions removed %d, want 1", n)
	}
	all, err := s.NetworkSessions(ctx)
	must(t, err, "NetworkSessions")
	var ids []string
	for _, ns := range all {
		ids = append(ids, ns.SessionID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"edge", "fresh"}) {
		t.Errorf("sessions left after expiry: %v, want [edge fresh]", ids)
	}
}

// testSessionExpireEveryClient: expiry removes exactly the sessions last
// updated before the bound, whichever RADIUS client (or none: a session
// stored without one) they belong to.
func testSessionExpireEveryClient(t *testing.T, s nv.Store) {
	ctx := t.Context()
	type sess struct {
		prefix, client string
		updated        int
		kept           bool
	}
	all := []sess{
		{"10.0.0.1/32", "", 5, false}, {"10.0.0.2/32", "", 50, true},
		{"10.0.1.1/32", "gw-a", 9, false}, {"10.0.1.2/32", "gw-a", 10, true}, {"10.0.1.3/32", "gw-a", 11, true},
		{"10.0.2.1/32", "gw-b", 1, false}, {"10.0.2.2/32", "gw-b", 2, false},
		{"10.0.3.1/32", "gw-c", 99, true},
	}
	for i, x := range all {
		ns := session(x.prefix, fmt.Sprintf("+3460000000%d", i), fmt.Sprint("s", i), "pgw-1", at(0), at(x.updated))
		ns.Client = x.client
		must(t, s.StartSession(ctx, ns), "StartSession("+x.prefix+")")
	}
	n, err := s.ExpireSessions(ctx, at(10))
	must(t, err, "ExpireSessions")
	if n != 4 {
		t.Errorf("ExpireSessions removed %d, want 4", n)
	}
	left, err := s.NetworkSessions(ctx)
	must(t, err, "NetworkSessions")
	kept := map[string]bool{}
	for _, ns := range left {
		kept[ns.Prefix.String()] = true
	}
	for _, x := range all {
		if kept[x.prefix] != x.kept {
			t.Errorf("%s (client %q, updated at(%d)): kept %v, want %v", x.prefix, x.client, x.updated, kept[x.prefix], x.kept)
		}
	}
}

func testPortBlocks(t *testing.T, s nv.Store) {
	ctx := t.Context()
	private := netip.MustParseAddr("100.64.0.7")
	public := netip.MustParseAddr("198.51.100.1")
	b := nv.PortBlock{Private: private, Public: public, FirstPort: 1024, LastPort: 2047, Start: at(100)}
	must(t, s.AllocatePortBlock(ctx, b), "AllocatePortBlock")
	must(t, s.AllocatePortBlock(ctx, b), "AllocatePortBlock(retransmit)")

	lookup := func(addr string, port uint16, when time.Time) (netip.Addr, error) {
		return s.PrivateAddrFor(ctx, netip.AddrPortFrom(netip.MustParseAddr(addr), port), when)
	}
	for _, tt := range []struct {
		name string
		addr string
		port uint16
		when time.Time
		ok   bool
	}{
		{"first port at start", "198.51.100.1", 1024, at(100), true},
		{"last port", "198.51.100.1", 2047, at(200), true},
		{"4in6 public address", "::ffff:198.51.100.1", 1500, at(200), true},
		{"before start", "198.51.100.1", 1024, at(99), false},
		{"port below", "198.51.100.1", 1023, at(200), false},
		{"port above", "198.51.100.1", 2048, at(200), false},
		{"other public address", "198.51.100.2", 1024, at(200), false},
	} {
		got, err := lookup(tt.addr, tt.port, tt.when)
		if tt.ok {
			if err != nil || got != private {
				t.Errorf("%s: PrivateAddrFor = %v, %v; want %v", tt.name, got, err, private)
			}
		} else {
			wantErr(t, err, nv.ErrNotFound, tt.name)
		}
	}

	ok, err := s.ReleasePortBlock(ctx, private, public, 1024, 2047, at(300))
	must(t, err, "ReleasePortBlock")
	if !ok {
		t.Error("ReleasePortBlock did not find the open block")
	}
	ok, err = s.ReleasePortBlock(ctx, private, public, 1024, 2047, at(301))
	must(t, err, "ReleasePortBlock(twice)")
	if ok {
		t.Error("second ReleasePortBlock reported an open block")
	}
	ok, err = s.ReleasePortBlock(ctx, netip.MustParseAddr("100.64.0.8"), public, 1024, 2047, at(300))
	must(t, err, "ReleasePortBlock(other private)")
	if ok {
		t.Error("ReleasePortBlock of another private address reported an open block")
	}

	// A request seen while the block was held still maps back to it.
	if got, err := lookup("198.51.100.1", 1500, at(299)); err != nil || got != private {
		t.Errorf("PrivateAddrFor before release = %v, %v; want %v", got, err, private)
	}
	_, err = lookup("198.51.100.1", 1500, at(300))
	wantErr(t, err, nv.ErrNotFound, "PrivateAddrFor at release")
	_, err = lookup("198.51.100.1", 1500, at(400))
	wantErr(t, err, nv.ErrNotFound, "PrivateAddrFor after release")

	// The block goes to another subscriber; each time maps to its holder.
	next := netip.MustParseAddr("100.64.0.9")
	must(t, s.AllocatePortBlock(ctx, nv.PortBlock{Private: next, Public: public, FirstPort: 1024, LastPort: 2047, Start: at(500)}),
		"AllocatePortBlock(next holder)")
	if got, err := lookup("198.51.100.1", 1500, at(600)); err != nil || got != next {
		t.Errorf("PrivateAddrFor(next holder) = %v, %v; want %v", got, err, next)
	}
	if got, err := lookup("198.51.100.1", 1500, at(200)); err != nil || got != private {
		t.Errorf("PrivateAddrFor(earlier holder) = %v, %v; want %v", got, err, private)
	}

	// Overlapping open allocations (a lost release): the latest start wins.
	latest := netip.MustParseAddr("100.64.0.10")
	must(t, s.AllocatePortBlock(ctx, nv.PortBlock{Private: latest, Public: public, FirstPort: 1024, LastPort: 2047, Start: at(700)}),
		"AllocatePortBlock(overlapping)")
	if got, err := lookup("198.51.100.1", 1500, at(800)); err != nil || got != latest {
		t.Errorf("PrivateAddrFor(overlap) = %v, %v; want %v", got, err, latest)
	}
}

func testCollect(t *testing.T, s nv.Store) {
	ctx := t.Context()
	now := time.Now().Truncate(time.Second)
	past, future := now.Add(-time.Hour), now.Add(time.Hour)

	must(t, s.ConsumeJTI(ctx, "app-a", "jti-dead", past, past.Add(-time.Minute)), "ConsumeJTI(dead)")
	must(t, s.ConsumeJTI(ctx, "app-a", "jti-live", future, now), "ConsumeJTI(live)")
	must(t, s.SaveAuthSession(ctx, nv.AuthSession{ID: "as-dead", ExpiresAt: past}), "SaveAuthSession(dead)")
	must(t, s.SaveAuthSession(ctx, nv.AuthSession{ID: "as-live", ExpiresAt: future}), "SaveAuthSession(live)")
	must(t, s.CreateGrant(ctx, nv.Grant{ID: "g-dead", AuthCode: "c-dead", ExpiresAt: past}), "CreateGrant(dead)")
	must(t, s.CreateGrant(ctx, nv.Grant{ID: "g-live", AuthCode: "c-live", ExpiresAt: future}), "CreateGrant(live)")
	must(t, s.SaveToken(ctx, token("h-dead", "g-live", past)), "SaveToken(dead)")
	must(t, s.SaveToken(ctx, token("h-live", "g-live", future)), "SaveToken(live)")
	must(t, s.SaveToken(ctx, token("h-used-live", "g-live", future)), "SaveToken(used, live)")
	if _, err := s.ConsumeToken(ctx, "h-used-live", now); err != nil {
		t.Fatalf("ConsumeToken: %v", err)
	}
	// Port blocks: open (kept), released a moment ago (kept for tracing),
	// released long ago (removed).
	public := netip.MustParseAddr("198.51.100.1")
	blocks := []nv.PortBlock{
		{Private: netip.MustParseAddr("100.64.0.1"), Public: public, FirstPort: 1024, LastPort: 2047, Start: now.Add(-time.Hour)},
		{Private: netip.MustParseAddr("100.64.0.2"), Public: public, FirstPort: 2048, LastPort: 3071, Start: now.Add(-2 * time.Hour), End: now.Add(-time.Hour)},
		{Private: netip.MustParseAddr("100.64.0.3"), Public: public, FirstPort: 3072, LastPort: 4095, Start: now.Add(-400 * 24 * time.Hour), End: now.Add(-365 * 24 * time.Hour)},
	}
	for _, b := range blocks {
		must(t, s.AllocatePortBlock(ctx, b), "AllocatePortBlock")
	}
	sess := session("10.0.0.1/32", "+34600000001", "s1", "pgw-1", past.Add(-24*time.Hour), past.Add(-24*time.Hour))
	must(t, s.StartSession(ctx, sess), "StartSession")

	n, err := s.Collect(ctx, now)
	must(t, err, "Collect")
	if n != 5 {
		t.Errorf("Collect removed %d rows, want 5 (jti, auth session, grant, token, old port block)", n)
	}

	wantErr(t, s.ConsumeJTI(ctx, "app-a", "jti-live", future, now), nv.ErrConsumed, "live jti after Collect")
	if _, err := s.AuthSession(ctx, "as-live", now); err != nil {
		t.Errorf("live auth session after Collect: %v", err)
	}
	if _, err := s.Grant(ctx, "g-live"); err != nil {
		t.Errorf("live grant after Collect: %v", err)
	}
	_, err = s.Grant(ctx, "g-dead")
	wantErr(t, err, nv.ErrNotFound, "expired grant after Collect")
	if _, err := s.Token(ctx, "h-live"); err != nil {
		t.Errorf("live token after Collect: %v", err)
	}
	_, err = s.ConsumeToken(ctx, "h-used-live", now)
	wantErr(t, err, nv.ErrConsumed, "used live token after Collect")
	_, err = s.Token(ctx, "h-dead")
	wantErr(t, err, nv.ErrNotFound, "expired token after Collect")
	for _, b := range blocks[:2] {
		when := b.Start.Add(time.Minute)
		got, err := s.PrivateAddrFor(ctx, netip.AddrPortFrom(public, b.FirstPort), when)
		if err != nil || got != b.Private {
			t.Errorf("port block %v after Collect: %v, %v", b.Private, got, err)
		}
	}
	_, err = s.PrivateAddrFor(ctx, netip.AddrPortFrom(public, 3072), blocks[2].Start.Add(time.Minute))
	wantErr(t, err, nv.ErrNotFound, "long-released port block after Collect")
	// Network sessions are ExpireSessions' business, not Collect's.
	if _, err := sessionFor(t, s, "10.0.0.1", time.Time{}); err != nil {
		t.Errorf("network session after Collect: %v", err)
	}

	n, err = s.Collect(ctx, now)
	must(t, err, "Collect(again)")
	if n != 0 {
		t.Errorf("second Collect removed %d rows, want 0", n)
	}
}

func testPing(t *testing.T, s nv.Store) {
	must(t, s.Ping(t.Context()), "Ping")
}

func testDailyQuota(t *testing.T, s nv.Store) {
	ctx := t.Context()
	day := at(0)
	for i := range 3 {
		ok, err := s.TakeDailyQuota(ctx, "app-a", day.Add(time.Duration(i)*time.Hour), 3)
		must(t, err, "TakeDailyQuota")
		if !ok {
			t.Fatalf("call %d of 3 refused", i+1)
		}
	}
	ok, err := s.TakeDailyQuota(ctx, "app-a", day, 3)
	must(t, err, "TakeDailyQuota")
	if ok {
		t.Error("4th call of a quota of 3 counted")
	}
	// A higher limit (the quota raised) lets calls through again.
	ok, err = s.TakeDailyQuota(ctx, "app-a", day, 4)
	must(t, err, "TakeDailyQuota(raised)")
	if !ok {
		t.Error("call under a raised quota refused")
	}
	// Other clients and other UTC dates count separately; a time of day in
	// another zone counts on its UTC date.
	for _, c := range []struct {
		client string
		day    time.Time
	}{
		{"app-b", day},
		{"app-a", day.AddDate(0, 0, 1)},
		{"app-a", time.Date(2026, 3, 2, 1, 0, 0, 0, time.FixedZone("CET", 3600))}, // 00:00 UTC on 3/2
	} {
		ok, err := s.TakeDailyQuota(ctx, c.client, c.day, 2)
		must(t, err, "TakeDailyQuota")
		if !ok {
			t.Errorf("%s on %s refused: it counts apart", c.client, c.day)
		}
	}
	ok, err = s.TakeDailyQuota(ctx, "app-a", time.Date(2026, 3, 1, 23, 30, 0, 0, time.FixedZone("X", -3600)), 2) // 3/2 00:30 UTC: 3rd call
	must(t, err, "TakeDailyQuota")
	if ok {
		t.Error("3rd call on 3/2 UTC (given in another zone) counted against a quota of 2")
	}
}

func testDailyQuotaConcurrent(t *testing.T, s nv.Store) {
	ctx := t.Context()
	var mu sync.Mutex
	counted := 0
	errs := race(20, func() error {
		ok, err := s.TakeDailyQuota(ctx, "app-a", at(0), 7)
		if ok {
			mu.Lock()
			counted++
			mu.Unlock()
		}
		return err
	})
	for _, err := range errs {
		must(t, err, "TakeDailyQuota")
	}
	if counted != 7 {
		t.Errorf("20 concurrent calls against a quota of 7: %d counted", counted)
	}
}

// testDailyQuotaCollect: Collect drops the counts of dates before
// yesterday (UTC) and keeps yesterday's and today's.
func testDailyQuotaCollect(t *testing.T, s nv.Store) {
	ctx := t.Context()
	now := time.Date(2026, 3, 10, 0, 30, 0, 0, time.UTC)
	for _, d := range []time.Time{now.AddDate(0, 0, -2), now.AddDate(0, 0, -1), now} {
		ok, err := s.TakeDailyQuota(ctx, "app-a", d, 1)
		must(t, err, "TakeDailyQuota")
		if !ok {
			t.Fatalf("first call on %s refused", d)
		}
	}
	n, err := s.Collect(ctx, now)
	must(t, err, "Collect")
	if n != 1 {
		t.Errorf("Collect removed %d rows, want 1 (the count of two days ago)", n)
	}
	for i, d := range []time.Time{now.AddDate(0, 0, -2), now.AddDate(0, 0, -1), now} {
		ok, err := s.TakeDailyQuota(ctx, "app-a", d, 1)
		must(t, err, "TakeDailyQuota")
		if ok != (i == 0) {
			t.Errorf("day %s after Collect: counted %v (only the collected day starts again)", d.Format(time.DateOnly), ok)
		}
	}
}

// testUsageRecords: records come back field for field within [from, to),
// oldest first and in insertion order at one instant; ExpireUsage removes
// those before its bound and nothing else.
func testUsageRecords(t *testing.T, s nv.Store) {
	ctx := t.Context()
	recs := []nv.UsageRecord{
		{At: at(-3600), ClientID: "app-a", Event: nv.UsageTokenIssued, Operation: "token", Purpose: "dpv:FraudPreventionAndDetection",
			Scopes: []string{nv.ScopeOpenID, nv.ScopeVerify}, Result: "OK", Source: "radius"},
		{At: at(0), ClientID: "app-a", Event: nv.UsageAPICall, Operation: "phoneNumberVerify", Purpose: "dpv:FraudPreventionAndDetection",
			Scopes: []string{nv.ScopeVerify}, Result: "OK", Source: "radius"},
		{At: at(0), ClientID: "app-b", Event: nv.UsageAPICall, Operation: "phoneNumberShare", Purpose: "dpv:X",
			Scopes: []string{nv.ScopeDevicePhoneNumber}, Result: "PERMISSION_DENIED", Source: "static"},
		{At: at(60), ClientID: "app-b", Event: nv.UsageAPICall, Operation: "phoneNumberVerify", Result: "QUOTA_EXCEEDED"},
	}
	// Stored out of time order: the result is ordered by time.
	for _, i := range []int{3, 1, 2, 0} {
		must(t, s.RecordUsage(ctx, recs[i]), "RecordUsage")
	}
	got, err := s.UsageRecords(ctx, at(-3600), at(61))
	must(t, err, "UsageRecords")
	if len(got) != 4 || got[1].ClientID != "app-a" || got[2].ClientID != "app-b" {
		t.Fatalf("UsageRecords: %+v", got)
	}
	equal(t, got, recs, "UsageRecords(all)")
	got, err = s.UsageRecords(ctx, at(-3599), at(60))
	must(t, err, "UsageRecords")
	equal(t, got, recs[1:3], "UsageRecords [from, to)")
	got, err = s.UsageRecords(ctx, at(1000), at(2000))
	must(t, err, "UsageRecords")
	if len(got) != 0 {
		t.Errorf("UsageRecords of an empty range: %+v", got)
	}

	n, err := s.ExpireUsage(ctx, at(0))
	must(t, err, "ExpireUsage")
	if n != 1 {
		t.Errorf("ExpireUsage removed %d, want 1", n)
	}
	got, err = s.UsageRecords(ctx, at(-7200), at(7200))
	must(t, err, "UsageRecords")
	equal(t, got, recs[1:], "UsageRecords after ExpireUsage")
}
