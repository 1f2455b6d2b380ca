package api

import (
	"net/http"

	"github.com/numbergate/numbergate/internal/nv"
)

// correlatorHeader is the CAMARA correlation header (Commonalities,
// components.parameters.x-correlator).
const correlatorHeader = "X-Correlator"

// maxCorrelatorLen is the {0,256} bound of the XCorrelator pattern.
const maxCorrelatorLen = 256

// correlator returns the request's x-correlator and whether one was sent. A
// repeated header or a value off the pattern ^[a-zA-Z0-9-_:;.\/<>{}]{0,256}$
// is an INVALID_ARGUMENT error whose message does not repeat the value.
func correlator(h http.Header) (value string, present bool, err error) {
	values := h.Values(correlatorHeader)
	switch len(values) {
	case 0:
		return "", false, nil
	case 1:
	default:
		return "", false, nv.Errorf(nv.CodeInvalidArgument, "Only one x-correlator header is allowed.")
	}
	if !validCorrelator(values[0]) {
		return "", false, nv.Errorf(nv.CodeInvalidArgument, "The x-correlator header must match ^[a-zA-Z0-9-_:;.\\/<>{}]{0,256}$.")
	}
	return values[0], true, nil
}

func validCorrelator(s string) bool {
	if len(s) > maxCorrelatorLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == ':', c == ';', c == '.', c == '/',
			c == '<', c == '>', c == '{', c == '}':
		default:
			return false
		}
	}
	return true
}
