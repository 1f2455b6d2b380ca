package api

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/numbergate/numbergate/internal/nv"
)

var (
	phonePattern  = regexp.MustCompile(`^\+[1-9][0-9]{4,14}$`)
	hashedPattern = regexp.MustCompile(`^[a-fA-F0-9]{64}$`)
)

// FuzzVerifyBody: parseVerifyBody never panics, and whatever it accepts is a
// JSON object with exactly one key, phoneNumber or hashedPhoneNumber, whose
// string value is on its pattern and is what the parser returned.
func FuzzVerifyBody(f *testing.F) {
	for _, seed := range []string{
		`{"phoneNumber":"+123456789"}`,
		`{"hashedPhoneNumber":"` + testHash + `"}`,
		`{"hashedPhoneNumber":"` + strings.ToUpper(testHash) + `"}`,
		`{}`, `null`, `[]`, `""`, `{"phoneNumber":null}`, `{"phoneNumber":1}`,
		`{"phoneNumber":"+123456789","hashedPhoneNumber":"` + testHash + `"}`,
		`{"phoneNumber":"+123456789","phoneNumber":"+123456789"}`,
		`{"phoneNumber":"+123456789"}{}`, `{"phoneNumber":"+123456789"`,
		`{"phoneNumber":"\u002b123456789"}`, `{"phone\u004eumber":"+123456789"}`,
		`{"x":{"y":[1,2,{"z":null}]}}`, "{\"phoneNumber\":\"+12345\xff\"}",
		` { "phoneNumber" : "+123456789012345" } `,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseVerifyBody(body)
		if err != nil {
			if nv.ErrorCode(err) != nv.CodeInvalidArgument {
				t.Fatalf("code %s for %q", nv.ErrorCode(err), body)
			}
			return
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("accepted a body encoding/json rejects: %q: %v", body, err)
		}
		if len(m) != 1 {
			t.Fatalf("accepted %d keys: %q", len(m), body)
		}
		switch {
		case req.PhoneNumber != "" && req.HashedPhoneNumber == "":
			if v, ok := m["phoneNumber"].(string); !ok || v != string(req.PhoneNumber) || !phonePattern.MatchString(v) {
				t.Fatalf("bad phoneNumber accepted: %q -> %+v", body, req)
			}
		case req.HashedPhoneNumber != "" && req.PhoneNumber == "":
			if v, ok := m["hashedPhoneNumber"].(string); !ok || v != req.HashedPhoneNumber || !hashedPattern.MatchString(v) {
				t.Fatalf("bad hashedPhoneNumber accepted: %q -> %+v", body, req)
			}
		default:
			t.Fatalf("accepted with not exactly one field: %q -> %+v", body, req)
		}
	})
}

// FuzzPlainBody: the fast path of parseVerifyBody accepts only what the full
// decoder accepts, with the same result.
func FuzzPlainBody(f *testing.F) {
	for _, seed := range []string{
		`{"phoneNumber":"+123456789"}`,
		`{"hashedPhoneNumber":"` + testHash + `"}`,
		` {"hashedPhoneNumber" : "` + strings.ToUpper(testHash) + `"}` + "\n",
		`{"phoneNumber":"+123456789",}`, `{"phoneNumber":"+123456789"}}`, `{"phoneNumber":"+12345678\u0039"}`,
		`{"phoneNumber":"123456789"}`, `{"other":"+123456789"}`, `{"phoneNumber":+123456789}`,
		"\ufeff{\"phoneNumber\":\"+123456789\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := parsePlainBody(body)
		if !ok {
			return
		}
		full, err := decodeVerifyBody(body)
		if err != nil || fast != full {
			t.Fatalf("fast path accepted %q as %+v; the full decoder: %+v, %v", body, fast, full, err)
		}
	})
}
