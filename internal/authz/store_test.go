package authz

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/luikyv/go-oidc/pkg/goidc"
)

// TestEngineEvents pins what go-oidc v0.23.0 asks of the adapter for each
// step of the flow, as store operations. An engine upgrade that changes
// them fails here, not in production.
func TestEngineEvents(t *testing.T) {
	h := newHarness(t)
	c := h.client("app-a", nil)
	h.store.take()

	code, verifier := h.code(c)
	if ops := h.store.take(); !slices.Equal(ops, []string{"CreateGrant"}) {
		t.Errorf("/authorize (granted): %v, want [CreateGrant]", ops)
	}
	h.authorizeRaw(authorizeParams(c, "").Encode(), "10.9.9.9:1")
	if ops := h.store.take(); len(ops) != 0 {
		t.Errorf("/authorize (access_denied): %v, want none", ops)
	}
	if tr := h.token(c, code, verifier, h.assertion(c, nil)); tr.status != http.StatusOK {
		t.Fatalf("token: %d %s", tr.status, tr.Description)
	}
	if ops := h.store.take(); !slices.Equal(ops, []string{"IssueToken"}) {
		t.Errorf("/token (redeemed): %v, want [IssueToken]", ops)
	}
	if tr := h.token(c, code, verifier, h.assertion(c, nil)); tr.status != http.StatusBadRequest {
		t.Fatalf("reuse: %d %s", tr.status, tr.Description)
	}
	if ops := h.store.take(); !slices.Equal(ops, []string{"ConsumeJTI", "RevokeGrant"}) {
		t.Errorf("/token (code reused): %v, want [ConsumeJTI RevokeGrant]", ops)
	}
	if tr := h.token(c, code, verifier, h.assertion(c, nil)); tr.status != http.StatusBadRequest {
		t.Fatalf("after revocation: %d %s", tr.status, tr.Description)
	}
	if ops := h.store.take(); !slices.Equal(ops, []string{"ConsumeJTI"}) {
		t.Errorf("/token (revoked code): %v, want [ConsumeJTI]", ops)
	}
}

// TestEventDecisions is the table of the one place that decides what an
// engine call means.
func TestEventDecisions(t *testing.T) {
	for _, tt := range []struct {
		g    goidc.Grant
		want event
	}{
		{goidc.Grant{AuthCode: "c"}, grantCreated},
		{goidc.Grant{AuthCode: "c", AuthCodeConsumedAt: 1}, codeRedeemed},
		{goidc.Grant{AuthCodeConsumedAt: 1}, codeRedeemed},
		{goidc.Grant{AuthCode: "c", AuthCodeConsumedAt: 1, RevokedAt: 2}, grantRevoked},
		{goidc.Grant{RevokedAt: 2}, grantRevoked},
		{goidc.Grant{}, grantUnknown},
	} {
		if got := grantEvent(&tt.g); got != tt.want {
			t.Errorf("grantEvent(%+v) = %s, want %s", tt.g, got, tt.want)
		}
	}
	es := &engineStore{}
	for status, wantErr := range map[goidc.Status]bool{
		goidc.StatusSuccess: false, goidc.StatusFailure: false, goidc.StatusPending: true, "": true,
	} {
		err := es.SaveSession(t.Context(), &goidc.AuthnSession{Status: status})
		if (err != nil) != wantErr {
			t.Errorf("SaveSession(%q): %v", status, err)
		}
	}
	if err := es.SaveGrant(t.Context(), &goidc.Grant{ID: "g"}); err == nil {
		t.Error("SaveGrant of a grant without a code was accepted")
	}
}

// TestPolicyOutcomes: the one authentication policy maps the resolver's
// answers to OAuth errors, redirected to the client, storing nothing; an
// internal failure says nothing of its cause to the client.
func TestPolicyOutcomes(t *testing.T) {
	h := newHarness(t)
	c := h.client("app-a", nil)
	var results []string
	h.srv.cfg.OnAuthorize = func(result, source string) { results = append(results, result+"/"+source) }
	for addr, want := range map[string]string{
		knownDevice:   "",
		"10.9.9.9:1":  "access_denied",
		badHintDevice: "invalid_request",
		brokenDevice:  "server_error",
	} {
		h.store.take()
		results = nil
		a := h.authorizeRaw(authorizeParams(c, "").Encode(), addr)
		if a.location == nil || a.err != want || (want == "" && a.code == "") {
			t.Errorf("%s: %d code %q error %q (%s)", addr, a.status, a.code, a.err, a.desc)
		}
		if strings.Contains(a.desc, "secret") {
			t.Errorf("%s: the internal error reached the client: %s", addr, a.desc)
		}
		if want != "" {
			if ops := h.store.take(); len(ops) != 0 {
				t.Errorf("%s: wrote %v", addr, ops)
			}
		}
		wantResult := map[string]string{"": "code_issued/static", "access_denied": "access_denied/",
			"invalid_request": "invalid_request/", "server_error": "error/"}[want]
		if !slices.Equal(results, []string{wantResult}) {
			t.Errorf("%s: OnAuthorize %v, want [%s]", addr, results, wantResult)
		}
	}
}
