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
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
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

// checkContentType accepts application/json with at most a charset=utf-8
// parameter; anything else is 415 UNSUPPORTED_MEDIA_TYPE (Commonalities
// Generic415).
func checkContentType(h http.Header) error {
	values := h.Values("Content-Type")
	if len(values) != 1 {
		return nv.Errorf(nv.CodeUnsupportedMedia, "The request body must be sent with Content-Type: application/json.")
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
