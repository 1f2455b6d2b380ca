package cgnat

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// ErrMalformed is wrapped by every ParseLine error.
var ErrMalformed = errors.New("cgnat: malformed record")

// MaxLineLen bounds a record line (with its syslog header).
const MaxLineLen = 8192

// Op is what happened to a port block.
type Op int

const (
	// Alloc: the block was allocated to the private address.
	Alloc Op = iota + 1
	// Release: the block was given back.
	Release
)

func (o Op) String() string {
	switch o {
	case Alloc:
		return "ALLOC"
	case Release:
		return "RELEASE"
	}
	return "UNKNOWN"
}

// Record is one port-block allocation event.
type Record struct {
	Time      time.Time
	Op        Op
	Private   netip.Addr
	Public    netip.Addr
	FirstPort uint16
	LastPort  uint16
}

// String returns the record in the line format.
func (r Record) String() string {
	return fmt.Sprintf("%s %s private=%s public=%s ports=%d-%d",
		r.Time.UTC().Format(time.RFC3339Nano), r.Op, r.Private, r.Public, r.FirstPort, r.LastPort)
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// ParseLine parses one record line, with or without a syslog header (see
// the package documentation for the format).
func ParseLine(line []byte) (Record, error) {
	if len(line) > MaxLineLen {
		return Record{}, malformed("line longer than %d bytes", MaxLineLen)
	}
	line = bytes.TrimRight(line, "\r\n")
	if !utf8Printable(line) {
		return Record{}, malformed("control or invalid bytes")
	}
	s := strings.ReplaceAll(string(line), "\ufeff", " ") // RFC 5424 BOM
	fields := strings.Fields(s)
	start := -1
	var ts time.Time
	for i := 0; i+1 < len(fields); i++ {
		if opOf(fields[i+1]) == 0 {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, fields[i])
		if err != nil {
			continue
		}
		start, ts = i, t
		break
	}
	if start < 0 {
		return Record{}, malformed("no \"TIME ALLOC|RELEASE\" found")
	}
	if y := ts.UTC().Year(); y < 1970 || y >= 2200 {
		return Record{}, malformed("time out of range")
	}
	r := Record{Time: ts, Op: opOf(fields[start+1])}
	seen := map[string]bool{}
	for _, f := range fields[start+2:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return Record{}, malformed("field without '='")
		}
		k = strings.ToLower(k)
		switch k {
		case "private", "public", "ports":
		default:
			continue // other keys are allowed and ignored
		}
		if seen[k] {
			return Record{}, malformed("%s given twice", k)
		}
		seen[k] = true
		switch k {
		case "private", "public":
			a, err := netip.ParseAddr(v)
			if err != nil || a.Zone() != "" {
				return Record{}, malformed("bad %s address", k)
			}
			a = a.Unmap()
			if k == "private" {
				r.Private = a
			} else {
				r.Public = a
			}
		case "ports":
			first, last, err := parsePorts(v)
			if err != nil {
				return Record{}, err
			}
			r.FirstPort, r.LastPort = first, last
		}
	}
	for _, k := range []string{"private", "public", "ports"} {
		if !seen[k] {
			return Record{}, malformed("%s missing", k)
		}
	}
	return r, nil
}

func opOf(s string) Op {
	switch strings.ToUpper(s) {
	case "ALLOC":
		return Alloc
	case "RELEASE":
		return Release
	}
	return 0
}

func parsePorts(v string) (uint16, uint16, error) {
	a, b, isRange := strings.Cut(v, "-")
	first, err := parsePort(a)
	if err != nil {
		return 0, 0, err
	}
	last := first
	if isRange {
		if last, err = parsePort(b); err != nil {
			return 0, 0, err
		}
	}
	if first > last {
		return 0, 0, malformed("first port after last port")
	}
	return first, last, nil
}

func parsePort(s string) (uint16, error) {
	if s == "" || len(s) > 5 || s[0] == '+' || s[0] == '-' {
		return 0, malformed("bad port")
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, malformed("bad port")
	}
	return uint16(n), nil
}

// utf8Printable rejects NUL and other control bytes except tab.
func utf8Printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
