package api

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// correlatorPattern is the XCorrelator pattern as CAMARA writes it; Go's
// regexp reads its '-' after a range as a literal, as intended.
var correlatorPattern = regexp.MustCompile(`^[a-zA-Z0-9-_:;.\/<>{}]{0,256}$`)

func TestCorrelator(t *testing.T) {
	tests := []struct {
		name    string
		values  []string
		want    string
		present bool
		wantErr bool
	}{
		{"absent", nil, "", false, false},
		{"uuid", []string{"b4333c46-49c0-4f62-80d7-f0ef930f1c46"}, "b4333c46-49c0-4f62-80d7-f0ef930f1c46", true, false},
		{"every allowed symbol", []string{"aZ09-_:;./<>{}"}, "aZ09-_:;./<>{}", true, false},
		{"empty is valid", []string{""}, "", true, false},
		{"256 chars", []string{strings.Repeat("a", 256)}, strings.Repeat("a", 256), true, false},
		{"257 chars", []string{strings.Repeat("a", 257)}, "", false, true},
		{"space", []string{"a b"}, "", false, true},
		{"quote", []string{`a"b`}, "", false, true},
		{"backslash", []string{`a\b`}, "", false, true},
		{"non-ascii", []string{"café"}, "", false, true},
		{"newline-ish", []string{"a\tb"}, "", false, true},
		{"repeated", []string{"a", "b"}, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.values {
				h.Add("x-correlator", v)
			}
			got, present, err := correlator(h)
			if (err != nil) != tt.wantErr || got != tt.want || present != tt.present {
				t.Fatalf("correlator = %q, %v, %v; want %q, %v, err %v", got, present, err, tt.want, tt.present, tt.wantErr)
			}
			if err != nil && len(tt.values) == 1 && strings.Contains(err.Error(), tt.values[0]) && tt.values[0] != "" {
				t.Errorf("error repeats the bad value: %v", err)
			}
		})
	}
}

func TestValidCorrelatorMatchesPattern(t *testing.T) {
	for c := 0; c < 256; c++ {
		s := "x" + string(rune(c)) + "y"
		if c >= 0x80 {
			s = "x" + string([]byte{byte(c)}) + "y"
		}
		if got, want := validCorrelator(s), correlatorPattern.MatchString(s); got != want {
			t.Errorf("byte %#x: validCorrelator = %v, pattern = %v", c, got, want)
		}
	}
}
