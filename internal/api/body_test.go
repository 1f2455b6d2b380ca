package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/numbergate/numbergate/internal/nv"
)

const (
	testPhone = "+123456789"
	// testHash is SHA-256 of "+123456789" (the CAMARA test vector).
	testHash = "b49f9168e8a886ffd61a090b51a26e117717f5f6fa804af49ea67043a2bfa4f0"
)

func TestReadVerifyRequest(t *testing.T) {
	const json = "application/json"
	tests := []struct {
		name        string
		contentType string // "-" for no header
		body        string
		nilBody     bool
		wantPhone   nv.PhoneNumber
		wantHash    string
		wantCode    nv.Code // "" for success
		wantMsg     string  // a substring of the message
	}{
		// Accepted.
		{name: "phone", contentType: json, body: `{"phoneNumber":"+123456789"}`, wantPhone: testPhone},
		{name: "hash", contentType: json, body: `{"hashedPhoneNumber":"` + testHash + `"}`, wantHash: testHash},
		{name: "upper-case hash", contentType: json, body: `{"hashedPhoneNumber":"` + strings.ToUpper(testHash) + `"}`, wantHash: strings.ToUpper(testHash)},
		{name: "whitespace around", contentType: json, body: " \n{ \"phoneNumber\" : \"+123456789\" }\n", wantPhone: testPhone},
		{name: "escaped plus", contentType: json, body: `{"phoneNumber":"\u002b123456789"}`, wantPhone: testPhone},
		{name: "charset utf-8", contentType: "application/json; charset=utf-8", body: `{"phoneNumber":"+123456789"}`, wantPhone: testPhone},
		{name: "charset UTF-8 quoted", contentType: `Application/JSON;charset="UTF-8"`, body: `{"phoneNumber":"+123456789"}`, wantPhone: testPhone},
		{name: "shortest phone", contentType: json, body: `{"phoneNumber":"+12345"}`, wantPhone: "+12345"},
		{name: "longest phone", contentType: json, body: `{"phoneNumber":"+123456789012345"}`, wantPhone: "+123456789012345"},

		// Empty.
		{name: "nil body", contentType: json, nilBody: true, wantCode: nv.CodeInvalidArgument, wantMsg: "required"},
		{name: "empty body", contentType: json, body: "", wantCode: nv.CodeInvalidArgument, wantMsg: "required"},
		{name: "blank body", contentType: json, body: " \r\n\t", wantCode: nv.CodeInvalidArgument, wantMsg: "required"},
		{name: "empty body without content type", contentType: "-", body: "", wantCode: nv.CodeInvalidArgument, wantMsg: "required"},
		{name: "empty object", contentType: json, body: `{}`, wantCode: nv.CodeInvalidArgument, wantMsg: "Exactly one"},

		// Shape.
		{name: "both fields", contentType: json, body: `{"phoneNumber":"+123456789","hashedPhoneNumber":"` + testHash + `"}`, wantCode: nv.CodeInvalidArgument, wantMsg: "not both"},
		{name: "unknown field", contentType: json, body: `{"phoneNumber":"+123456789","extra":1}`, wantCode: nv.CodeInvalidArgument, wantMsg: `Unknown field "extra"`},
		{name: "unknown field alone", contentType: json, body: `{"msisdn":"+123456789"}`, wantCode: nv.CodeInvalidArgument, wantMsg: "Unknown field"},
		{name: "field name case", contentType: json, body: `{"PhoneNumber":"+123456789"}`, wantCode: nv.CodeInvalidArgument, wantMsg: "Unknown field"},
		{name: "long unknown field is cut", contentType: json, body: `{"` + strings.Repeat("k", 100) + `":1}`, wantCode: nv.CodeInvalidArgument, wantMsg: `"...:`},
		{name: "duplicate key", contentType: json, body: `{"phoneNumber":"+123456789","phoneNumber":"+123456780"}`, wantCode: nv.CodeInvalidArgument, wantMsg: "more than once"},
		{name: "duplicate hash key", contentType: json, body: `{"hashedPhoneNumber":"` + testHash + `","hashedPhoneNumber":"` + testHash + `"}`, wantCode: nv.CodeInvalidArgument, wantMsg: "more than once"},
		{name: "null", contentType: json, body: `null`, wantCode: nv.CodeInvalidArgument, wantMsg: "not null"},
		{name: "array", contentType: json, body: `[{"phoneNumber":"+123456789"}]`, wantCode: nv.CodeInvalidArgument, wantMsg: "not an array"},
		{name: "string", contentType: json, body: `"+123456789"`, wantCode: nv.CodeInvalidArgument, wantMsg: "not a string"},
		{name: "number", contentType: json, body: `123456789`, wantCode: nv.CodeInvalidArgument, wantMsg: "not a number"},
		{name: "boolean", contentType: json, body: `true`, wantCode: nv.CodeInvalidArgument, wantMsg: "not a boolean"},

		// Types.
		{name: "phone null", contentType: json, body: `{"phoneNumber":null}`, wantCode: nv.CodeInvalidArgument, wantMsg: "not null"},
		{name: "phone number type", contentType: json, body: `{"phoneNumber":123456789}`, wantCode: nv.CodeInvalidArgument, wantMsg: "not a number"},
		{name: "phone bool", contentType: json, body: `{"phoneNumber":true}`, wantCode: nv.CodeInvalidArgument, wantMsg: "not a boolean"},
		{name: "phone array", contentType: json, body: `{"phoneNumber":["+123456789"]}`, wantCode: nv.CodeInvalidArgument, wantMsg: "not an array"},
		{name: "phone object", contentType: json, body: `{"phoneNumber":{}}`, wantCode: nv.CodeInvalidArgument, wantMsg: "not an object"},
		{name: "hash null", contentType: json, body: `{"hashedPhoneNumber":null}`, wantCode: nv.CodeInvalidArgument, wantMsg: "not null"},

		// Patterns.
		{name: "phone empty", contentType: json, body: `{"phoneNumber":""}`, wantCode: nv.CodeInvalidArgument, wantMsg: "E.164"},
		{name: "phone without plus", contentType: json, body: `{"phoneNumber":"123456789"}`, wantCode: nv.CodeInvalidArgument, wantMsg: "E.164"},
		{name: "phone leading zero", contentType: json, body: `{"phoneNumber":"+0123456789"}`, wantCode: nv.CodeInvalidArgument, wantMsg: "E.164"},
		{name: "phone too short", contentType: json, body: `{"phoneNumber":"+1234"}`, wantCode: nv.CodeInvalidArgument, wantMsg: "E.164"},
		{name: "phone too long", contentType: json, body: `{"phoneNumber":"+1234567890123456"}`, wantCode: nv.CodeInvalidArgument, wantMsg: "E.164"},
		{name: "phone with spaces", contentType: json, body: `{"phoneNumber":"+34 600 000 001"}`, wantCode: nv.CodeInvalidArgument, wantMsg: "E.164"},
		{name: "phone trailing newline", contentType: json, body: `{"phoneNumber":"+123456789\n"}`, wantCode: nv.CodeInvalidArgument, wantMsg: "E.164"},
		{name: "phone tel uri", contentType: json, body: `{"phoneNumber":"tel:+123456789"}`, wantCode: nv.CodeInvalidArgument, wantMsg: "E.164"},
		{name: "hash short", contentType: json, body: `{"hashedPhoneNumber":"` + testHash[:63] + `"}`, wantCode: nv.CodeInvalidArgument, wantMsg: "64 hex"},
		{name: "hash long", contentType: json, body: `{"hashedPhoneNumber":"` + testHash + `0"}`, wantCode: nv.CodeInvalidArgument, wantMsg: "64 hex"},
		{name: "hash not hex", contentType: json, body: `{"hashedPhoneNumber":"` + testHash[:63] + `g"}`, wantCode: nv.CodeInvalidArgument, wantMsg: "64 hex"},
		{name: "hash empty", contentType: json, body: `{"hashedPhoneNumber":""}`, wantCode: nv.CodeInvalidArgument, wantMsg: "64 hex"},
		{name: "phone given as hash", contentType: json, body: `{"hashedPhoneNumber":"+123456789"}`, wantCode: nv.CodeInvalidArgument, wantMsg: "64 hex"},

		// Syntax.
		{name: "trailing object", contentType: json, body: `{"phoneNumber":"+123456789"}{}`, wantCode: nv.CodeInvalidArgument, wantMsg: "nothing after"},
		{name: "trailing garbage", contentType: json, body: `{"phoneNumber":"+123456789"} x`, wantCode: nv.CodeInvalidArgument, wantMsg: "nothing after"},
		{name: "trailing comma", contentType: json, body: `{"phoneNumber":"+123456789",}`, wantCode: nv.CodeInvalidArgument, wantMsg: "not valid JSON"},
		{name: "truncated", contentType: json, body: `{"phoneNumber":"+123456789"`, wantCode: nv.CodeInvalidArgument, wantMsg: "ends too early"},
		{name: "single quotes", contentType: json, body: `{'phoneNumber':'+123456789'}`, wantCode: nv.CodeInvalidArgument, wantMsg: "not valid JSON"},
		{name: "form encoded as json", contentType: json, body: `phoneNumber=%2B123456789`, wantCode: nv.CodeInvalidArgument, wantMsg: "not valid JSON"},
		{name: "byte order mark", contentType: json, body: "\ufeff{\"phoneNumber\":\"+123456789\"}", wantCode: nv.CodeInvalidArgument, wantMsg: "not valid JSON"},
		{name: "over 4 KiB", contentType: json, body: `{"phoneNumber":"+123456789"}` + strings.Repeat(" ", MaxBodyBytes), wantCode: nv.CodeInvalidArgument, wantMsg: "exceed"},
		{name: "exactly 4 KiB", contentType: json, body: `{"phoneNumber":"+123456789"}` + strings.Repeat(" ", MaxBodyBytes-28), wantPhone: testPhone},

		// Content-Type.
		{name: "no content type", contentType: "-", body: `{"phoneNumber":"+123456789"}`, wantCode: nv.CodeUnsupportedMedia},
		{name: "text/plain", contentType: "text/plain", body: `{"phoneNumber":"+123456789"}`, wantCode: nv.CodeUnsupportedMedia},
		{name: "form", contentType: "application/x-www-form-urlencoded", body: `{"phoneNumber":"+123456789"}`, wantCode: nv.CodeUnsupportedMedia},
		{name: "json suffix", contentType: "application/problem+json", body: `{"phoneNumber":"+123456789"}`, wantCode: nv.CodeUnsupportedMedia},
		{name: "latin1", contentType: "application/json; charset=iso-8859-1", body: `{"phoneNumber":"+123456789"}`, wantCode: nv.CodeUnsupportedMedia, wantMsg: "charset=utf-8"},
		{name: "other parameter", contentType: "application/json; v=2", body: `{"phoneNumber":"+123456789"}`, wantCode: nv.CodeUnsupportedMedia},
		{name: "malformed content type", contentType: "application/json;;", body: `{"phoneNumber":"+123456789"}`, wantCode: nv.CodeUnsupportedMedia},
		{name: "upper case", contentType: "APPLICATION/JSON", body: `{"phoneNumber":"+123456789"}`, wantPhone: testPhone},
		{name: "unicode fold is not ASCII case", contentType: "application/j\u017fon", body: `{"phoneNumber":"+123456789"}`, wantCode: nv.CodeUnsupportedMedia},
		{name: "trailing space", contentType: "application/json ", body: `{"phoneNumber":"+123456789"}`, wantPhone: testPhone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, VerifyPath, strings.NewReader(tt.body))
			if tt.nilBody {
				r.Body = nil
			}
			if tt.contentType != "-" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			req, err := readVerifyRequest(r)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if req.PhoneNumber != tt.wantPhone || req.HashedPhoneNumber != tt.wantHash {
					t.Fatalf("got %+v", req)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %+v, want %s", req, tt.wantCode)
			}
			if code := nv.ErrorCode(err); code != tt.wantCode {
				t.Fatalf("code = %s, want %s (%v)", code, tt.wantCode, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("message %q does not contain %q", err.Error(), tt.wantMsg)
			}
			if strings.Contains(err.Error(), "123456") {
				t.Errorf("message repeats a phone number: %q", err.Error())
			}
		})
	}
}

// TestReadVerifyRequestReadsAtMostLimit checks a huge body is not read whole.
func TestReadVerifyRequestReadsAtMostLimit(t *testing.T) {
	src := &countingReader{}
	r := httptest.NewRequest(http.MethodPost, VerifyPath, src)
	r.ContentLength = -1
	r.Header.Set("Content-Type", "application/json")
	if _, err := readVerifyRequest(r); nv.ErrorCode(err) != nv.CodeInvalidArgument {
		t.Fatalf("err = %v", err)
	}
	if src.n > MaxBodyBytes+1 {
		t.Errorf("read %d bytes", src.n)
	}
}

// countingReader is an endless body of spaces.
type countingReader struct{ n int }

func (c *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	c.n += len(p)
	return len(p), nil
}

var _ io.Reader = (*countingReader)(nil)
