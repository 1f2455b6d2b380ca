package cli

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// MinRSABits is the smallest RSA modulus accepted in a client's JWKS.
const MinRSABits = 2048

// privateMembers are the JWK members that carry private or symmetric key
// material (RFC 7518 section 6; "priv" for AKP keys).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}

// checkClientJWKS validates a client's JSON Web Key Set for private_key_jwt:
// a set ({"keys": [...]}) of public asymmetric signing keys only (EC P-256,
// RSA of at least MinRSABits, or Ed25519), no private or symmetric key
// material. It returns the set re-encoded with public keys only, warnings
// (such as a key without "kid"), and every problem found.
func checkClientJWKS(data []byte) (public []byte, warnings, problems []string) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, nil, []string{fmt.Sprintf("not a JSON Web Key Set: invalid JSON object (%v)", jsonError(err))}
	}
	rawKeys, ok := top["keys"]
	if !ok {
		if _, isKey := top["kty"]; isKey {
			return nil, nil, []string{`a single JSON Web Key, not a key set: wrap it as {"keys": [ ... ]}`}
		}
		return nil, nil, []string{`not a JSON Web Key Set: no "keys" member`}
	}
	var keys []json.RawMessage
	if err := json.Unmarshal(rawKeys, &keys); err != nil {
		return nil, nil, []string{`not a JSON Web Key Set: "keys" is not an array`}
	}
	if len(keys) == 0 {
		return nil, nil, []string{"the key set holds no keys"}
	}

	set := jose.JSONWebKeySet{}
	kids := map[string]int{}
	for i, raw := range keys {
		where := fmt.Sprintf("keys[%d]", i)
		var members map[string]json.RawMessage
		if err := json.Unmarshal(raw, &members); err != nil {
			problems = append(problems, where+": not a JSON object")
			continue
		}
		var kty, kid string
		_ = json.Unmarshal(members["kty"], &kty)
		_ = json.Unmarshal(members["kid"], &kid)
		if kid != "" {
			where = fmt.Sprintf("keys[%d] (kid %q)", i, kid)
		}
		if kty == "oct" {
			problems = append(problems, where+": a symmetric (oct) key: clients authenticate with private_key_jwt and register public asymmetric keys only")
			continue
		}
		var private []string
		for _, m := range privateMembers {
			if _, ok := members[m]; ok {
				private = append(private, fmt.Sprintf("%q", m))
			}
		}
		if len(private) > 0 {
			problems = append(problems, fmt.Sprintf("%s: contains private key material (%s): register the public key only; the private key stays with the client (and, having been copied, should be replaced)", where, joinList(private)))
			continue
		}

		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			if errors.Is(err, jose.ErrUnsupportedKeyType) {
				problems = append(problems, fmt.Sprintf("%s: unsupported key type %q (use EC P-256, RSA or Ed25519)", where, kty+crvSuffix(members)))
			} else {
				problems = append(problems, fmt.Sprintf("%s: %v", where, err))
			}
			continue
		}
		var algs []string
		switch pub := k.Key.(type) {
		case *ecdsa.PublicKey:
			if pub.Curve != elliptic.P256() {
				problems = append(problems, fmt.Sprintf("%s: EC curve %s is not accepted (use P-256)", where, pub.Curve.Params().Name))
				continue
			}
			algs = []string{string(jose.ES256)}
		case *rsa.PublicKey:
			if n := pub.N.BitLen(); n < MinRSABits {
				problems = append(problems, fmt.Sprintf("%s: RSA key of %d bits is too short (at least %d)", where, n, MinRSABits))
				continue
			}
			algs = []string{string(jose.RS256), string(jose.RS384), string(jose.RS512), string(jose.PS256), string(jose.PS384), string(jose.PS512)}
		case ed25519.PublicKey:
			algs = []string{string(jose.EdDSA), "Ed25519"}
		default:
			problems = append(problems, fmt.Sprintf("%s: unsupported key type %q (use EC P-256, RSA or Ed25519)", where, kty))
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			problems = append(problems, fmt.Sprintf("%s: \"use\" is %q; client assertion keys must be for \"sig\"", where, k.Use))
		}
		if k.Algorithm != "" && !slices.Contains(algs, k.Algorithm) {
			problems = append(problems, fmt.Sprintf("%s: \"alg\" %q does not fit this key (use %s)", where, k.Algorithm, joinList(algs)))
		}
		if kid == "" {
			warnings = append(warnings, fmt.Sprintf("%s has no \"kid\" (recommended, so that assertions can name their key and keys can be rotated)", where))
		} else if j, dup := kids[kid]; dup {
			problems = append(problems, fmt.Sprintf("%s: kid %q is already used by keys[%d]", where, kid, j))
		} else {
			kids[kid] = i
		}
		set.Keys = append(set.Keys, k.Public())
	}
	if len(problems) > 0 {
		return nil, warnings, problems
	}
	public, err := json.Marshal(set)
	if err != nil {
		return nil, warnings, []string{fmt.Sprintf("re-encoding the key set: %v", err)}
	}
	return public, warnings, nil
}

func crvSuffix(members map[string]json.RawMessage) string {
	var crv string
	if json.Unmarshal(members["crv"], &crv) == nil && crv != "" {
		return " " + crv
	}
	return ""
}

func jsonError(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v at byte %d", se, se.Offset)
	}
	return err.Error()
}

func joinList(items []string) string { return strings.Join(items, ", ") }
