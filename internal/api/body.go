package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/numbergate/numbergate/internal/nv"
)

// MaxBodyBytes is the largest /verify body accepted (a valid one is under
// 100 bytes).
const MaxBodyBytes = 4 << 10

// verifyRequest is the parsed NumberVerificationRequestBody: exactly one of
// the two fields is set.
type verifyRequest struct {
	PhoneNumber       nv.PhoneNumber // "" unless phoneNumber was sent
	HashedPhoneNumber string         // "" unless hashedPhoneNumber was sent
}

// Field names of NumberVerificationRequestBody.
const (
	fieldPhoneNumber       = "phoneNumber"
	fieldHashedPhoneNumber = "hashedPhoneNumber"
)

func invalidBody(format string, args ...any) error {
	return nv.Errorf(nv.CodeInvalidArgument, format, args...)
}

// readVerifyRequest reads and validates the /verify body. It reads at most
// MaxBodyBytes+1 bytes and touches nothing else.
func readVerifyRequest(r *http.Request) (verifyRequest, error) {
	if r.Body == nil || r.ContentLength > MaxBodyBytes {
		if r.Body == nil {
			return verifyRequest{}, invalidBody("A JSON request body is required.")
		}
		return verifyRequest{}, invalidBody("The request body must not exceed %d bytes.", MaxBodyBytes)
	}
	body, err := readBody(r)
	if err != nil {
		return verifyRequest{}, invalidBody("The request body could not be read.")
	}
	if len(body) > MaxBodyBytes {
		return verifyRequest{}, invalidBody("The request body must not exceed %d bytes.", MaxBodyBytes)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return verifyRequest{}, invalidBody("A JSON request body is required.")
	}
	if err := checkContentType(r.Header); err != nil {
		return verifyRequest{}, err
	}
	return parseVerifyBody(body)
}

// readBody reads at most MaxBodyBytes+1 bytes of the body, in one
// allocation when the length is announced.
func readBody(r *http.Request) ([]byte, error) {
	size := 512
	if r.ContentLength >= 0 && r.ContentLength <= MaxBodyBytes {
		size = int(r.ContentLength) + 1 // room to see EOF (or a longer body)
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // grow
		}
		n, err := r.Body.Read(buf[len(buf):min(cap(buf), MaxBodyBytes+1)])
		buf = buf[:len(buf)+n]
		switch {
		case err == io.EOF:
			return buf, nil
		case err != nil:
			return buf, err
		case len(buf) > MaxBodyBytes:
			return buf, nil
		}
	}
}

// asciiEqualFold reports whether s is t (lower-case ASCII) in any ASCII case.
func asciiEqualFold(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != t[i] {
			return false
		}
	}
	return true
}

// checkContentType accepts application/json with at most a charset=utf-8
// parameter; anything else is 415 UNSUPPORTED_MEDIA_TYPE (Commonalities
// Generic415).
func checkContentType(h http.Header) error {
	values := h["Content-Type"]
	if len(values) != 1 {
		return nv.Errorf(nv.CodeUnsupportedMedia, "The request body must be sent with Content-Type: application/json.")
	}
	if asciiEqualFold(values[0], "application/json") {
		return nil // what mime.ParseMediaType accepts below, without its map
	}
	mediaType, params, err := mime.ParseMediaType(values[0])
	if err != nil || mediaType != "application/json" {
		return nv.Errorf(nv.CodeUnsupportedMedia, "The request body must be sent with Content-Type: application/json.")
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return nv.Errorf(nv.CodeUnsupportedMedia, "Content-Type application/json accepts only the parameter charset=utf-8.")
		}
	}
	return nil
}

// parseVerifyBody is the strict decoder of NumberVerificationRequestBody: one
// JSON object, no trailing data, no duplicate or unknown keys, string values
// on their patterns, exactly one of phoneNumber and hashedPhoneNumber.
// Messages name the offending field but never repeat a value.
func parseVerifyBody(body []byte) (verifyRequest, error) {
	if req, ok := parsePlainBody(body); ok {
		return req, nil
	}
	return decodeVerifyBody(body)
}

// decodeVerifyBody is parseVerifyBody for any input, on encoding/json's
// tokenizer.
func decodeVerifyBody(body []byte) (verifyRequest, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return verifyRequest{}, syntaxError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return verifyRequest{}, invalidBody("The request body must be a JSON object, not %s.", jsonKind(tok))
	}
	var req verifyRequest
	var seenPhone, seenHash bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return verifyRequest{}, syntaxError(err)
		}
		key, ok := tok.(string)
		if !ok { // the decoder rejects non-string keys itself; be safe
			return verifyRequest{}, invalidBody("The request body is not valid JSON.")
		}
		var seen *bool
		switch key {
		case fieldPhoneNumber:
			seen = &seenPhone
		case fieldHashedPhoneNumber:
			seen = &seenHash
		default:
			return verifyRequest{}, invalidBody("Unknown field %s: only phoneNumber or hashedPhoneNumber is allowed.", quoteField(key))
		}
		if *seen {
			return verifyRequest{}, invalidBody("Field %s appears more than once.", key)
		}
		*seen = true
		tok, err = dec.Token()
		if err != nil {
			return verifyRequest{}, syntaxError(err)
		}
		value, ok := tok.(string)
		if !ok {
			return verifyRequest{}, invalidBody("Field %s must be a string, not %s.", key, jsonKind(tok))
		}
		if key == fieldPhoneNumber {
			p, err := nv.ParsePhoneNumber(value)
			if err != nil {
				return verifyRequest{}, invalidBody("Field phoneNumber must be an E.164 number with a leading '+' (pattern ^\\+[1-9][0-9]{4,14}$).")
			}
			req.PhoneNumber = p
		} else {
			if !nv.ValidHashedPhoneNumber(value) {
				return verifyRequest{}, invalidBody("Field hashedPhoneNumber must be the 64 hex digits of a SHA-256 (pattern ^[a-fA-F0-9]{64}$).")
			}
			req.HashedPhoneNumber = value
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return verifyRequest{}, syntaxError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return verifyRequest{}, invalidBody("The request body must hold a single JSON object and nothing after it.")
	}
	switch {
	case !seenPhone && !seenHash:
		return verifyRequest{}, invalidBody("Exactly one of phoneNumber or hashedPhoneNumber is required.")
	case seenPhone && seenHash:
		return verifyRequest{}, invalidBody("Only one of phoneNumber or hashedPhoneNumber may be sent, not both.")
	}
	return req, nil
}

// parsePlainBody is parseVerifyBody's fast path, for the body every client
// sends: one object with one known key whose string value is valid, with no
// escapes and no byte outside printable ASCII. It reports false for
// anything else, which parseVerifyBody then decodes (and explains) in full.
func parsePlainBody(body []byte) (verifyRequest, bool) {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return verifyRequest{}, false
	}
	key, i, ok := plainString(body, skipSpace(body, i+1))
	if !ok {
		return verifyRequest{}, false
	}
	i = skipSpace(body, i)
	if i >= len(body) || body[i] != ':' {
		return verifyRequest{}, false
	}
	value, i, ok := plainString(body, skipSpace(body, i+1))
	if !ok {
		return verifyRequest{}, false
	}
	i = skipSpace(body, i)
	if i >= len(body) || body[i] != '}' || skipSpace(body, i+1) != len(body) {
		return verifyRequest{}, false
	}
	switch string(key) {
	case fieldPhoneNumber:
		p, err := nv.ParsePhoneNumber(string(value))
		return verifyRequest{PhoneNumber: p}, err == nil
	case fieldHashedPhoneNumber:
		v := string(value)
		return verifyRequest{HashedPhoneNumber: v}, nv.ValidHashedPhoneNumber(v)
	}
	return verifyRequest{}, false
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a JSON string at b[i] that needs no unescaping and
// holds only printable ASCII; it returns its content and the index after
// its closing quote.
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, i, false
		}
	}
	return nil, i, false
}

func syntaxError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return invalidBody("The request body is not valid JSON: it ends too early.")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return invalidBody("The request body is not valid JSON (error at byte %d).", se.Offset)
	}
	return invalidBody("The request body is not valid JSON.")
}

// jsonKind names the JSON type of a decoder token, for messages.
func jsonKind(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64, json.Number:
		return "a number"
	case string:
		return "a string"
	case json.Delim:
		if v == '[' {
			return "an array"
		}
		return "an object"
	}
	return "an unexpected value"
}

// quoteField quotes a client-supplied field name for a message, cut short.
func quoteField(key string) string {
	const maxLen = 40
	if len(key) > maxLen {
		return fmt.Sprintf("%q...", key[:maxLen])
	}
	return fmt.Sprintf("%q", key)
}
