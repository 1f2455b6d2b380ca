package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/numbergate/numbergate/internal/nv"
)

func TestBearerToken(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   string // "" means an error is expected
	}{
		{"ok", []string{"Bearer abc.DEF-123_~+/=="}, "abc.DEF-123_~+/=="},
		{"scheme case-insensitive", []string{"bearer tok"}, "tok"},
		{"several spaces", []string{"Bearer   tok"}, "tok"},
		{"missing", nil, ""},
		{"two headers", []string{"Bearer a", "Bearer b"}, ""},
		{"empty", []string{""}, ""},
		{"scheme only", []string{"Bearer"}, ""},
		{"scheme and space", []string{"Bearer "}, ""},
		{"basic", []string{"Basic dXNlcjpwYXNz"}, ""},
		{"no scheme", []string{"tok"}, ""},
		{"inner space", []string{"Bearer a b"}, ""},
		{"only padding", []string{"Bearer =="}, ""},
		{"padding inside", []string{"Bearer a=b"}, ""},
		{"bad char", []string{"Bearer a,b"}, ""},
		{"too long", []string{"Bearer " + strings.Repeat("a", maxTokenLen+1)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.values {
				h.Add("Authorization", v)
			}
			got, err := bearerToken(h)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("bearerToken = %q, want an error", got)
				}
				if nv.ErrorCode(err) != nv.CodeUnauthenticated {
					t.Errorf("code = %s", nv.ErrorCode(err))
				}
				for _, v := range tt.values {
					if _, tok, ok := strings.Cut(v, " "); ok && len(tok) > 2 && strings.Contains(err.Error(), tok) {
						t.Errorf("error echoes the token: %v", err)
					}
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("bearerToken = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
