package api

import (
	"net/http"
	"strings"

	"github.com/numbergate/numbergate/internal/nv"
)

// maxTokenLen bounds the token we are willing to hash (ours are far shorter).
const maxTokenLen = 2048

// bearerToken extracts the access token from the Authorization header
// (RFC 6750 section 2.1: "Bearer" 1*SP b64token; the scheme is
// case-insensitive). It never puts the token in an error message.
func bearerToken(h http.Header) (string, error) {
	values := h.Values("Authorization")
	switch {
	case len(values) == 0:
		return "", nv.Errorf(nv.CodeUnauthenticated, "An Authorization header with a Bearer access token is required.")
	case len(values) > 1:
		return "", nv.Errorf(nv.CodeUnauthenticated, "Exactly one Authorization header is allowed.")
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", nv.Errorf(nv.CodeUnauthenticated, "The Authorization header must use the Bearer scheme: 'Authorization: Bearer <access token>'.")
	}
	token = strings.TrimLeft(token, " ")
	if !validB64Token(token) {
		return "", nv.Errorf(nv.CodeUnauthenticated, "The Bearer access token is malformed.")
	}
	return token, nil
}

// validB64Token checks the RFC 6750 b64token syntax:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func validB64Token(s string) bool {
	if s == "" || len(s) > maxTokenLen {
		return false
	}
	end := len(s)
	for end > 0 && s[end-1] == '=' {
		end--
	}
	if end == 0 {
		return false
	}
	for i := 0; i < end; i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}
