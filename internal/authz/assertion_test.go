package authz

import (
	"encoding/base64"
	"reflect"
	"testing"

	josejson "github.com/go-jose/go-jose/v4/json"
	"github.com/go-jose/go-jose/v4/jwt"
)

// FuzzPlainCompactJWS: whenever checkAssertion's direct reading of a client
// assertion accepts the input, go-jose accepts it too and reads the same
// claims, so the short cut never changes what is refused or how.
func FuzzPlainCompactJWS(f *testing.F) {
	b64 := base64.RawURLEncoding.EncodeToString
	claims := b64([]byte(`{"iss":"app-a","sub":"app-a","aud":"https://as.example/token","jti":"j1","iat":1700000000,"exp":1700000060}`))
	for _, h := range []string{
		`{"alg":"ES256","kid":"k1","typ":"JWT"}`, `{"alg":"ES256"}`, `{"alg":"none"}`, `{"alg":"HS256"}`,
		`{"alg":"ES256","jwk":{"kty":"EC"}}`, `{"alg":"ES256","kid":1}`, `{"alg":"ES256","crit":["b64"],"b64":false}`,
		`{"alg":"ES256","alg":"none"}`, `{"alg":1,"alg":"PS256"}`, `{"\u0061lg":"EdDSA"}`, `null`, `[]`, ``, `{"alg":"ES256"} x`,
	} {
		f.Add(b64([]byte(h)) + "." + claims + ".c2ln")
	}
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJFUzI1NiJ9..")
	f.Add("eyJhbGciOiJFUzI1NiJ9.e30.sig.x")
	f.Add("eyJhbGciOiJFUzI1NiJ9.e30.s=")
	f.Add("eyJhbGciOiJFUzI1NiJ9\n.e30.sig")
	f.Fuzz(func(t *testing.T, s string) {
		payload, ok := plainCompactJWS(s)
		if !ok {
			return
		}
		tok, err := jwt.ParseSigned(s, requestObjectAlgs)
		if err != nil {
			t.Fatalf("%q: read directly, but go-jose refuses it: %v", s, err)
		}
		var want, got jwt.Claims
		wantErr := tok.UnsafeClaimsWithoutVerification(&want)
		gotErr := josejson.Unmarshal(payload, &got)
		if (wantErr == nil) != (gotErr == nil) || !reflect.DeepEqual(want, got) {
			t.Fatalf("%q: claims %+v (%v), go-jose reads %+v (%v)", s, got, gotErr, want, wantErr)
		}
	})
}

func TestPlainCompactJWSReadsTheUsualAssertion(t *testing.T) {
	b64 := base64.RawURLEncoding.EncodeToString
	s := b64([]byte(`{"alg":"ES256","kid":"k1","typ":"JWT"}`)) + "." + b64([]byte(`{"iss":"app-a"}`)) + ".c2ln"
	if payload, ok := plainCompactJWS(s); !ok || string(payload) != `{"iss":"app-a"}` {
		t.Fatalf("got %q, %v; want the payload", payload, ok)
	}
	for _, h := range []string{`{"alg":"none"}`, `{"alg":"ES256","jwk":{"kty":"EC"}}`, `{"alg":"ES256","crit":["b64"]}`} {
		if _, ok := plainCompactJWS(b64([]byte(h)) + ".e30.c2ln"); ok {
			t.Errorf("header %s is read directly; it must go through go-jose", h)
		}
	}
}
