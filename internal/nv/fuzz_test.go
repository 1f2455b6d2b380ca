package nv_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/numbergate/numbergate/internal/nv"
)

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{4,14}$`)

// FuzzParsePhoneNumber: ParsePhoneNumber accepts exactly the CAMARA pattern,
// returns its input unchanged, and every accepted number round-trips through
// NormalizeMSISDN in all its gateway forms, matches its own hash in either
// case, and masks to a string of the same length that hides the middle.
func FuzzParsePhoneNumber(f *testing.F) {
	for _, seed := range []string{
		"+123456789", "+12345", "+123456789012345", "+1234", "+1234567890123456",
		"", "+", "123456789", "0034600000001", "+0123456789", " +123456789",
		"+12345678a", "+１２３４５", "tel:+123456789", "+12345\x00",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := nv.ParsePhoneNumber(s)
		if want := e164.MatchString(s); (err == nil) != want {
			t.Fatalf("ParsePhoneNumber(%q) err = %v; pattern match = %v", s, err, want)
		}
		if err != nil {
			if nv.ErrorCode(err) != nv.CodeInvalidArgument {
				t.Fatalf("code %s", nv.ErrorCode(err))
			}
			return
		}
		if string(p) != s {
			t.Fatalf("ParsePhoneNumber(%q) = %q", s, p)
		}
		digits := s[1:]
		for _, form := range []string{s, digits, "00" + digits, " " + s + "\n"} {
			if q, err := nv.NormalizeMSISDN(form); err != nil || q != p {
				t.Fatalf("NormalizeMSISDN(%q) = %q, %v; want %q", form, q, err, p)
			}
		}
		h := p.Hash()
		if !nv.ValidHashedPhoneNumber(h) || !p.MatchesHash(h) || !p.MatchesHash(strings.ToUpper(h)) {
			t.Fatalf("%q does not match its own hash %s", p, h)
		}
		m := p.Masked()
		if len(m) != len(s) || m[:3] != s[:3] || m[len(m)-2:] != s[len(s)-2:] || strings.Trim(m[3:len(m)-2], "*") != "" {
			t.Fatalf("%q.Masked() = %q", p, m)
		}
	})
}
