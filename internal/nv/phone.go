package nv

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
)

// PhoneNumber is an E.164 number with its leading '+', as CAMARA writes it:
// "+" followed by 5 to 15 digits, the first not 0 (pattern
// ^\+[1-9][0-9]{4,14}$).
type PhoneNumber string

// ParsePhoneNumber accepts exactly the CAMARA form and nothing looser.
func ParsePhoneNumber(s string) (PhoneNumber, error) {
	if !validE164(s) {
		return "", Errorf(CodeInvalidArgument, "phone number must be in E.164 format with a leading '+': +[1-9] followed by 4 to 14 digits")
	}
	return PhoneNumber(s), nil
}

// NormalizeMSISDN turns the forms gateways and configs use ("34600000001",
// "+34600000001", "0034600000001") into E.164. It does not guess national
// prefixes: a number that is not already international is rejected.
func NormalizeMSISDN(s string) (PhoneNumber, error) {
	s = strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(s, "+"):
	case strings.HasPrefix(s, "00"):
		s = "+" + s[2:]
	default:
		s = "+" + s
	}
	return ParsePhoneNumber(s)
}

func validE164(s string) bool {
	if len(s) < 6 || len(s) > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9' {
		return false
	}
	for i := 2; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Hash is the CAMARA hashedPhoneNumber form: lowercase hex SHA-256 of the
// E.164 number including its '+'.
func (p PhoneNumber) Hash() string {
	sum := sha256.Sum256([]byte(p))
	return hex.EncodeToString(sum[:])
}

// MatchesHash compares against a hex SHA-256 case-insensitively, in constant
// time. It allocates nothing: the hex is decoded, not the hash encoded.
func (p PhoneNumber) MatchesHash(hexHash string) bool {
	var got [sha256.Size]byte
	if len(hexHash) != 2*len(got) {
		return false
	}
	bad := false
	for i := range got {
		hi, ok1 := fromHex(hexHash[2*i])
		lo, ok2 := fromHex(hexHash[2*i+1])
		bad = bad || !ok1 || !ok2
		got[i] = hi<<4 | lo
	}
	want := sha256.Sum256([]byte(p))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1 && !bad
}

// fromHex is the value of one hex digit, either case.
func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Masked hides all but the last two digits, for operator displays and logs
// that must not carry the number ("+34*******10").
func (p PhoneNumber) Masked() string {
	s := string(p)
	if len(s) <= 4 {
		return strings.Repeat("*", len(s))
	}
	return s[:3] + strings.Repeat("*", len(s)-5) + s[len(s)-2:]
}

// ValidHashedPhoneNumber reports whether s has the hashedPhoneNumber pattern
// ^[a-fA-F0-9]{64}$.
func ValidHashedPhoneNumber(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
