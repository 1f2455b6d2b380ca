package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

// memTokens is a TokenStore in memory (the handler only saves).
type memTokens struct {
	mu     sync.Mutex
	tokens map[string]nv.AccessToken
	fail   error
}

func (m *memTokens) SaveToken(_ context.Context, t nv.AccessToken) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if m.tokens == nil {
		m.tokens = map[string]nv.AccessToken{}
	}
	m.tokens[t.Hash] = t
	return nil
}

func (m *memTokens) ConsumeToken(context.Context, string, time.Time) (nv.AccessToken, error) {
	return nv.AccessToken{}, nv.ErrNotFound
}

func (m *memTokens) Token(_ context.Context, hash string) (nv.AccessToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[hash]
	if !ok {
		return nv.AccessToken{}, nv.ErrNotFound
	}
	return t, nil
}

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func mint(t *testing.T, st *memTokens, body string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	h := TokenHandler(st, func() time.Time { return t0 })
	req := httptest.NewRequest(http.MethodPost, "/sandbox/tokens", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body is not JSON: %s", rec.Body)
	}
	return rec, m
}

// TestTokenExpiresInBounds: expiresIn is bounded on both sides, so a huge
// negative value cannot overflow into a token valid for years (issue 6
// item 13: -18131384073 gave a token valid for ten years).
func TestTokenExpiresInBounds(t *testing.T) {
	for _, tt := range []struct {
		expiresIn string
		ok        bool
		lifetime  time.Duration
	}{
		{"-18131384073", false, 0},
		{"-9223372036", false, 0},
		{"-86401", false, 0},
		{"301", false, 0},
		{"9223372036854775807", false, 0},
		{"1e30", false, 0},
		{"-86400", true, -86400 * time.Second},
		{"0", true, 0},
		{"300", true, 300 * time.Second},
		{"60", true, 60 * time.Second},
	} {
		st := &memTokens{}
		rec, body := mint(t, st, `{"phoneNumber":"+34600000001","expiresIn":`+tt.expiresIn+`}`)
		if !tt.ok {
			if rec.Code != http.StatusBadRequest || body["code"] != "INVALID_ARGUMENT" {
				t.Errorf("expiresIn %s: %d %v, want 400 INVALID_ARGUMENT", tt.expiresIn, rec.Code, body)
			}
			if len(st.tokens) != 0 {
				t.Errorf("expiresIn %s: a token was stored", tt.expiresIn)
			}
			continue
		}
		if rec.Code != http.StatusOK {
			t.Errorf("expiresIn %s: %d %v", tt.expiresIn, rec.Code, body)
			continue
		}
		tok, _ := body["access_token"].(string)
		got, err := st.Token(t.Context(), nv.HashToken(tok))
		if err != nil {
			t.Fatalf("expiresIn %s: token not stored: %v", tt.expiresIn, err)
		}
		if life := got.ExpiresAt.Sub(t0); life != tt.lifetime {
			t.Errorf("expiresIn %s: lifetime %s, want %s", tt.expiresIn, life, tt.lifetime)
		}
	}
}

// TestTokenDefaults: without expiresIn the token lives nv.MaxTokenLifetime.
func TestTokenDefaults(t *testing.T) {
	st := &memTokens{}
	rec, body := mint(t, st, `{"phoneNumber":"+34600000001"}`)
	if rec.Code != http.StatusOK || body["expires_in"] != float64(nv.MaxTokenLifetime/time.Second) {
		t.Fatalf("%d %v", rec.Code, body)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
}

// TestTokenErrorsAreCAMARA: errors leave through the API's one CAMARA
// error writer: {status, code, message} in that order, no-store; a store
// failure is a generic 500 INTERNAL.
func TestTokenErrorsAreCAMARA(t *testing.T) {
	for _, body := range []string{
		`{"phoneNumber":"600000001"}`,
		`{"phoneNumber":"+34600000001","extra":1}`,
		`{"scope":"number-verification:verify"}`,
		`{"phoneNumber":"+34600000001","scope":"admin"}`,
		`not json`,
		`{"phoneNumber":"+34600000001"} {}`,
	} {
		rec, m := mint(t, &memTokens{}, body)
		if rec.Code != http.StatusBadRequest || m["status"] != float64(400) || m["code"] != "INVALID_ARGUMENT" || m["message"] == "" {
			t.Errorf("%s: %d %v", body, rec.Code, m)
		}
		if !strings.HasPrefix(rec.Body.String(), `{"status":400,"code":"INVALID_ARGUMENT","message":`) {
			t.Errorf("%s: field order: %s", body, rec.Body)
		}
	}
	rec, m := mint(t, &memTokens{fail: errors.New("disk full")}, `{"phoneNumber":"+34600000001"}`)
	if rec.Code != http.StatusInternalServerError || m["code"] != "INTERNAL" || strings.Contains(rec.Body.String(), "disk") {
		t.Errorf("store failure: %d %s", rec.Code, rec.Body)
	}
}

// TestQuickStartURLWorksAsPasted: the printed URL carries the + of the
// number percent-encoded.
func TestQuickStartURLWorksAsPasted(t *testing.T) {
	u := QuickStartURL("http://127.0.0.1:8081")
	if strings.Contains(u, "tel:+") || !strings.Contains(u, "tel%3A%2B34600000001") {
		t.Errorf("quick start URL %s", u)
	}
}
