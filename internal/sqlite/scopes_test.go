package sqlite

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestDecodeScopes: the in-place decoder of the scopes column gives what
// encoding/json gives, for what jsonList writes and for anything else.
func TestDecodeScopes(t *testing.T) {
	for _, l := range [][]string{nil, {}, {"openid"}, {"openid", "number-verification:verify", "dpv:X"},
		{""}, {"a,b", "c"}, {`quo"te`}, {`back\slash`}, {"tab\there"}, {"ünïcode"}, {"[", "]"}} {
		got, err := decodeScopes(jsonList(l))
		if err != nil || len(got) != len(l) || (len(l) > 0 && !reflect.DeepEqual(got, l)) {
			t.Errorf("decodeScopes(jsonList(%q)) = %q, %v", l, got, err)
		}
	}
	for _, s := range []string{`[ "a" ]`, `["a",]`, `[,"a"]`, `["a""b"]`, `["a"`, `"a"]`, `[]`, `["\u0061"]`, `[1]`, `["a\"b"]`, "[\"a\xffb\"]", `x`, ``} {
		testDecodeSame(t, s)
	}
}

func testDecodeSame(t *testing.T, s string) {
	t.Helper()
	var want []string
	wantErr := json.Unmarshal([]byte(s), &want)
	got, err := decodeScopes(s)
	if (err != nil) != (wantErr != nil) || (err == nil && len(got)+len(want) > 0 && !reflect.DeepEqual(got, want)) {
		t.Errorf("decodeScopes(%q) = %q, %v; encoding/json: %q, %v", s, got, err, want, wantErr)
	}
}

func FuzzDecodeScopes(f *testing.F) {
	for _, s := range []string{`[]`, `["openid","number-verification:verify"]`, `["a\"b"]`, `["",""]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { testDecodeSame(t, s) })
}
