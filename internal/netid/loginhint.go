package netid

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/numbergate/numbergate/internal/nv"
)

// ErrBadLoginHint is wrapped by every error of ParseLoginHint. It is an
// *nv.Error with code INVALID_ARGUMENT, so nv.ErrorCode maps it.
var ErrBadLoginHint = nv.Errorf(nv.CodeInvalidArgument,
	"login_hint must be tel:+E164, ipport:ADDRESS[:PORT] or operatortoken:TOKEN")

// MaxLoginHintLen bounds a login_hint (operator tokens are a few hundred
// bytes).
const MaxLoginHintLen = 4096

// HintKind is the type of a login_hint.
type HintKind int

const (
	// HintTel is tel:+E164 (RFC 3966 global number).
	HintTel HintKind = iota + 1
	// HintIPPort is ipport:ADDRESS[:PORT].
	HintIPPort
	// HintOperatorToken is operatortoken:TOKEN (GSMA TS.43).
	HintOperatorToken
)

func (k HintKind) String() string {
	switch k {
	case HintTel:
		return "tel"
	case HintIPPort:
		return "ipport"
	case HintOperatorToken:
		return "operatortoken"
	}
	return "unknown"
}

// LoginHint is a parsed CAMARA login_hint (ICM, "login_hint formats").
// Exactly the field of its Kind is set.
type LoginHint struct {
	Kind HintKind
	// Phone is the number of a tel: hint.
	Phone nv.PhoneNumber
	// Addr and Port are the address and port (0 when absent) of an ipport:
	// hint. They are what the client claims; they never identify a device
	// on their own.
	Addr netip.Addr
	Port uint16
	// OperatorToken is the opaque token of an operatortoken: hint.
	OperatorToken string
}

// AddrPort returns the ipport hint as an AddrPort (port 0 when absent).
func (h LoginHint) AddrPort() netip.AddrPort { return netip.AddrPortFrom(h.Addr, h.Port) }

// HasPort reports whether an ipport hint carried a port.
func (h LoginHint) HasPort() bool { return h.Port != 0 }

// String returns the canonical form of the hint.
func (h LoginHint) String() string {
	switch h.Kind {
	case HintTel:
		return "tel:" + string(h.Phone)
	case HintIPPort:
		if h.Port == 0 {
			return "ipport:" + h.Addr.String()
		}
		return "ipport:" + h.AddrPort().String()
	case HintOperatorToken:
		return "operatortoken:" + h.OperatorToken
	}
	return ""
}

// hintError is a malformed login_hint: errors.Is(err, ErrBadLoginHint)
// holds, and errors.As(err, **nv.Error) finds the detailed message first,
// so the client is told what exactly is wrong.
type hintError struct{ detail *nv.Error }

func (e *hintError) Error() string   { return e.detail.Error() }
func (e *hintError) Unwrap() []error { return []error{e.detail, ErrBadLoginHint} }

func badHint(format string, args ...any) error {
	return &hintError{detail: nv.Errorf(nv.CodeInvalidArgument, "%s: %s", ErrBadLoginHint.Message, fmt.Sprintf(format, args...))}
}

// ParseLoginHint parses the CAMARA login_hint formats:
//
//	tel:+34600000001
//	ipport:198.51.100.7
//	ipport:198.51.100.7:5678
//	ipport:2001:db8::1            (IPv6 without port)
//	ipport:[2001:db8::1]:8080     (IPv6 with port: brackets required)
//	operatortoken:...
//
// The scheme is case-insensitive; the rest is strict (no spaces, no zones,
// no port 0, tel: exactly E.164 with its '+').
func ParseLoginHint(s string) (LoginHint, error) {
	if len(s) > MaxLoginHintLen {
		return LoginHint{}, badHint("too long")
	}
	scheme, value, ok := strings.Cut(s, ":")
	if !ok {
		return LoginHint{}, badHint("no scheme")
	}
	switch strings.ToLower(scheme) {
	case "tel":
		p, err := nv.ParsePhoneNumber(value)
		if err != nil && strings.HasPrefix(value, " ") {
			// A '+' written raw in a query string arrives as a space.
			return LoginHint{}, badHint("the tel: value starts with a space where its + belongs: in a URL the + must be written %%2B, as in login_hint=tel:%%2B34600000001")
		}
		if err != nil {
			return LoginHint{}, badHint("tel: value is not E.164 (+ and 5 to 15 digits)")
		}
		return LoginHint{Kind: HintTel, Phone: p}, nil
	case "ipport":
		a, port, err := parseIPPort(value)
		if err != nil {
			return LoginHint{}, err
		}
		return LoginHint{Kind: HintIPPort, Addr: a, Port: port}, nil
	case "operatortoken":
		if value == "" {
			return LoginHint{}, badHint("empty operator token")
		}
		for i := 0; i < len(value); i++ {
			if c := value[i]; c <= ' ' || c >= 0x7f {
				return LoginHint{}, badHint("operator token has a space or non-ASCII byte")
			}
		}
		return LoginHint{Kind: HintOperatorToken, OperatorToken: value}, nil
	}
	return LoginHint{}, badHint("unknown scheme")
}

func parseIPPort(v string) (netip.Addr, uint16, error) {
	if v == "" {
		return netip.Addr{}, 0, badHint("empty ipport")
	}
	var (
		a    netip.Addr
		port uint16
	)
	switch {
	case v[0] == '[':
		if strings.HasSuffix(v, "]") { // [2001:db8::1] without port
			addr, err := netip.ParseAddr(v[1 : len(v)-1])
			if err != nil || !addr.Is6() {
				return netip.Addr{}, 0, badHint("bad bracketed IPv6 address")
			}
			a = addr
			break
		}
		ap, err := netip.ParseAddrPort(v)
		if err != nil || !ap.Addr().Is6() {
			return netip.Addr{}, 0, badHint("bad [IPv6]:port")
		}
		a, port = ap.Addr(), ap.Port()
		if port == 0 {
			return netip.Addr{}, 0, badHint("port 0")
		}
	case strings.Count(v, ":") > 1: // bare IPv6, no port
		addr, err := netip.ParseAddr(v)
		if err != nil || !addr.Is6() {
			return netip.Addr{}, 0, badHint("bad IPv6 address (use [addr]:port with a port)")
		}
		a = addr
	case strings.Contains(v, ":"):
		ap, err := netip.ParseAddrPort(v)
		if err != nil || !ap.Addr().Is4() {
			return netip.Addr{}, 0, badHint("bad IPv4:port")
		}
		a, port = ap.Addr(), ap.Port()
		if port == 0 {
			return netip.Addr{}, 0, badHint("port 0")
		}
	default:
		addr, err := netip.ParseAddr(v)
		if err != nil || !addr.Is4() {
			return netip.Addr{}, 0, badHint("bad IPv4 address")
		}
		a = addr
	}
	if a.Zone() != "" {
		return netip.Addr{}, 0, badHint("IPv6 zone not allowed")
	}
	return a, port, nil
}
