package authz

import (
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/numbergate/numbergate/internal/nv"
)

// TestEngineClientCache: the engine form of a client is converted once and
// handed out again while the store's client is unchanged; a change in the
// store (a rotated key) gives a new conversion, a removal ErrNotFound.
func TestEngineClientCache(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	es := &engineStore{st: h.store}
	h.client("app-a", nil)
	first, err := es.Client(ctx, "app-a")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := es.Client(ctx, "app-a"); err != nil || again != first {
		t.Errorf("unchanged client converted again: %p %p, %v", first, again, err)
	}
	rotated := h.client("app-a", nil) // same id, a new key
	got, err := es.Client(ctx, "app-a")
	if err != nil {
		t.Fatal(err)
	}
	if got == first || len(got.JWKS.Keys) != 1 || got.JWKS.Keys[0].KeyID != rotated.key.KeyID {
		t.Errorf("rotated key: got the old conversion or keys %+v", got.JWKS)
	}
	if _, err := first.JWKS.Key(first.JWKS.Keys[0].KeyID); err != nil {
		t.Errorf("the old conversion, still held by a request, was changed: %v", err)
	}
	if err := h.store.DeleteClient(ctx, "app-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := es.Client(ctx, "app-a"); !errors.Is(err, goidc.ErrNotFound) {
		t.Errorf("removed client: %v", err)
	}
	h.client("bad", func(c *nv.Client) { c.JWKS = []byte("{") })
	if _, err := es.Client(ctx, "bad"); err == nil {
		t.Error("unreadable JWKS accepted")
	}
}

// TestRotatedKeyAtToken: after a client's key is replaced in the store,
// /token refuses an assertion signed with the old key and accepts the new
// one, although the old client was converted and cached before.
func TestRotatedKeyAtToken(t *testing.T) {
	h := newHarness(t)
	old := h.client("app-a", nil)
	code, verifier := h.code(old)
	if tr := h.token(old, code, verifier, h.assertion(old, nil)); tr.status != http.StatusOK {
		t.Fatalf("before rotation: %d %s", tr.status, tr.Description)
	}
	next := h.client("app-a", nil)
	code, verifier = h.code(next)
	if tr := h.token(old, code, verifier, h.assertion(old, nil)); tr.status != http.StatusUnauthorized {
		t.Errorf("old key after rotation: %d %s", tr.status, tr.Description)
	}
	code, verifier = h.code(next)
	if tr := h.token(next, code, verifier, h.assertion(next, nil)); tr.status != http.StatusOK {
		t.Errorf("new key after rotation: %d %s", tr.status, tr.Description)
	}
}

// TestSameConversion: sameConversion says "same" exactly when engineClient
// gives equal results, for a change of each field of nv.Client (a field
// engineClient starts to read must be compared too, or this fails).
func TestSameConversion(t *testing.T) {
	jwks := func(kid string) []byte {
		return []byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"` + kid + `","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`)
	}
	base := nv.Client{ID: "a", RedirectURIs: []string{"https://a.example/cb"}, JWKS: jwks("k1"),
		Scopes: []string{nv.ScopeOpenID}, Purposes: []string{purpose}, RequirePKCE: true, QuotaPerDay: 5,
		CreatedAt: time.Unix(1_700_000_000, 0)}
	clone := func(f func(*nv.Client)) nv.Client {
		c := base
		c.RedirectURIs = append([]string(nil), c.RedirectURIs...)
		c.JWKS = append([]byte(nil), c.JWKS...)
		c.Scopes = append([]string(nil), c.Scopes...)
		c.Purposes = append([]string(nil), c.Purposes...)
		f(&c)
		return c
	}
	for name, f := range map[string]func(*nv.Client){
		"nothing":        func(*nv.Client) {},
		"id":             func(c *nv.Client) { c.ID = "b" },
		"redirect":       func(c *nv.Client) { c.RedirectURIs[0] = "https://b.example/cb" },
		"redirect added": func(c *nv.Client) { c.RedirectURIs = append(c.RedirectURIs, "https://b.example/cb") },
		"jwks":           func(c *nv.Client) { c.JWKS = jwks("k2") },
		"scope":          func(c *nv.Client) { c.Scopes = append(c.Scopes, nv.ScopeVerify) },
		"purpose added":  func(c *nv.Client) { c.Purposes = append(c.Purposes, "dpv:Other") },
		"no purpose":     func(c *nv.Client) { c.Purposes = nil },
		"pkce":           func(c *nv.Client) { c.RequirePKCE = false },
		"quota":          func(c *nv.Client) { c.QuotaPerDay = 6 },
		"created":        func(c *nv.Client) { c.CreatedAt = c.CreatedAt.Add(time.Hour) },
		"created ns":     func(c *nv.Client) { c.CreatedAt = c.CreatedAt.Add(time.Nanosecond) },
	} {
		other := clone(f)
		a, errA := engineClient(base)
		b, errB := engineClient(other)
		if errA != nil || errB != nil {
			t.Fatalf("%s: %v %v", name, errA, errB)
		}
		if want := reflect.DeepEqual(a, b); sameConversion(base, other) != want {
			t.Errorf("%s: sameConversion %v, engineClient results equal %v", name, !want, want)
		}
	}
}
