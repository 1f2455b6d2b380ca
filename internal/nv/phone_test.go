package nv_test

import (
	"strings"
	"testing"

	"github.com/numbergate/numbergate/internal/nv"
)

func TestParsePhoneNumber(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"+123456789", true},
		{"+12345", true},           // 5 digits, the minimum
		{"+123456789012345", true}, // 15 digits, the maximum
		{"+34600000001", true},
		{"+1234", false},             // 4 digits
		{"+1234567890123456", false}, // 16 digits
		{"", false},
		{"+", false},
		{"123456789", false},
		{"0034600000001", false},
		{"+0123456789", false},
		{"++123456789", false},
		{"+12345 6789", false},
		{" +123456789", false},
		{"+123456789 ", false},
		{"+123456789\n", false},
		{"+1-234-567-89", false},
		{"+12345678a", false},
		{"tel:+123456789", false},
		{"+１２３４５６７８９", false}, // full-width digits
		{"+12345\x00", false},
	}
	for _, tt := range tests {
		p, err := nv.ParsePhoneNumber(tt.in)
		if tt.ok {
			if err != nil || string(p) != tt.in {
				t.Errorf("ParsePhoneNumber(%q) = %q, %v; want it unchanged", tt.in, p, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("ParsePhoneNumber(%q) = %q, want an error", tt.in, p)
			continue
		}
		if code := nv.ErrorCode(err); code != nv.CodeInvalidArgument {
			t.Errorf("ParsePhoneNumber(%q) code = %s", tt.in, code)
		}
		if tt.in != "" && tt.in != "+" && strings.Contains(err.Error(), tt.in) {
			t.Errorf("error repeats the input: %v", err)
		}
	}
}

func TestNormalizeMSISDN(t *testing.T) {
	tests := []struct {
		in   string
		want nv.PhoneNumber // "" means an error
	}{
		{"34600000001", "+34600000001"},
		{"+34600000001", "+34600000001"},
		{"0034600000001", "+34600000001"},
		{" 34600000001\r\n", "+34600000001"},
		{"\t+34600000001 ", "+34600000001"},
		{"12345", "+12345"},
		{"123456789012345", "+123456789012345"},
		{"1234567890123456", ""},
		{"1234", ""},
		{"", ""},
		{"   ", ""},
		{"00", ""},
		{"+", ""},
		{"0600000001", ""},      // national form: not guessed
		{"000034600000001", ""}, // "00" then a leading 0
		{"+0034600000001", ""},
		{"34 600 000 001", ""},
		{"tel:+34600000001", ""},
		{"++34600000001", ""},
	}
	for _, tt := range tests {
		got, err := nv.NormalizeMSISDN(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("NormalizeMSISDN(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeMSISDN(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestHash(t *testing.T) {
	tests := []struct {
		in   nv.PhoneNumber
		want string
	}{
		// The CAMARA test vector.
		{"+123456789", "b49f9168e8a886ffd61a090b51a26e117717f5f6fa804af49ea67043a2bfa4f0"},
		// SHA-256 of the empty string: Hash does not validate.
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	}
	for _, tt := range tests {
		if got := tt.in.Hash(); got != tt.want {
			t.Errorf("%q.Hash() = %s, want %s", tt.in, got, tt.want)
		}
	}
	// The '+' is part of what is hashed.
	if nv.PhoneNumber("+123456789").Hash() == nv.PhoneNumber("123456789").Hash() {
		t.Error("hash ignores the '+'")
	}
}

func TestMatchesHash(t *testing.T) {
	const (
		p    = nv.PhoneNumber("+123456789")
		hash = "b49f9168e8a886ffd61a090b51a26e117717f5f6fa804af49ea67043a2bfa4f0"
	)
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"lower case", hash, true},
		{"upper case", strings.ToUpper(hash), true},
		{"mixed case", "B49F9168e8a886ffd61a090b51a26e117717f5f6fa804af49ea67043a2bfa4F0", true},
		{"other number", nv.PhoneNumber("+123456780").Hash(), false},
		{"hash without plus", nv.PhoneNumber("123456789").Hash(), false},
		{"one digit off", hash[:63] + "1", false},
		{"prefix", hash[:63], false},
		{"longer", hash + "0", false},
		{"empty", "", false},
		{"plain number", "+123456789", false},
		{"spaces around", " " + hash + " ", false},
		{"not hex", strings.Repeat("g", 64), false},
		{"hex of the hash with one digit not hex", "x" + hash[1:], false},
	}
	for _, tt := range tests {
		if got := p.MatchesHash(tt.in); got != tt.want {
			t.Errorf("%s: MatchesHash(%q) = %v, want %v", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestMasked(t *testing.T) {
	tests := []struct {
		in   nv.PhoneNumber
		want string
	}{
		{"+34600000010", "+34*******10"},
		{"+123456789", "+12*****89"},
		{"+12345", "+12*45"},
		{"+123456789012345", "+12***********45"},
		{"+123", "****"},
		{"", ""},
	}
	for _, tt := range tests {
		got := tt.in.Masked()
		if got != tt.want {
			t.Errorf("%q.Masked() = %q, want %q", tt.in, got, tt.want)
		}
		if len(got) != len(tt.in) {
			t.Errorf("%q.Masked() changes the length", tt.in)
		}
	}
}

func TestValidHashedPhoneNumber(t *testing.T) {
	const hash = "b49f9168e8a886ffd61a090b51a26e117717f5f6fa804af49ea67043a2bfa4f0"
	tests := []struct {
		in   string
		want bool
	}{
		{hash, true},
		{strings.ToUpper(hash), true},
		{strings.Repeat("0", 64), true},
		{strings.Repeat("F", 64), true},
		{hash[:63], false},
		{hash + "a", false},
		{"", false},
		{hash[:63] + "g", false},
		{hash[:63] + "G", false},
		{hash[:63] + " ", false},
		{"0x" + hash[:62], false},
		{hash[:62] + "é", false}, // 64 bytes, not 64 hex digits
	}
	for _, tt := range tests {
		if got := nv.ValidHashedPhoneNumber(tt.in); got != tt.want {
			t.Errorf("ValidHashedPhoneNumber(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestHashToken(t *testing.T) {
	// SHA-256 of "abc" (FIPS 180-2 test vector), lower-case hex.
	if got := nv.HashToken("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("HashToken(abc) = %s", got)
	}
}
