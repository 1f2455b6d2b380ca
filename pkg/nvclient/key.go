package nvclient

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/go-jose/go-jose/v4"
)

// Key is the client's private key for private_key_jwt assertions and
// signed request objects: ES256 (P-256), EdDSA (Ed25519) or RS256 (RSA of
// at least 2048 bits; PS256 when a JWK says so).
type Key struct {
	signer crypto.Signer
	alg    jose.SignatureAlgorithm
	kid    string
}

// KeyID is the kid put in the JWS header (the one registered with the
// server's copy of the public key).
func (k *Key) KeyID() string { return k.kid }

// Algorithm is the JWS algorithm the key signs with.
func (k *Key) Algorithm() string { return string(k.alg) }

// PublicJWKS is the JSON Web Key Set to register with the server
// (`numbergate clients add --jwks`).
func (k *Key) PublicJWKS() ([]byte, error) {
	pub := jose.JSONWebKey{Key: k.signer.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
	return json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
}

func (k *Key) joseKey() jose.SigningKey {
	return jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.signer, KeyID: k.kid, Algorithm: string(k.alg)}}
}

// NewKey wraps a private key (*ecdsa.PrivateKey on P-256,
// ed25519.PrivateKey, *rsa.PrivateKey) with its key id. An empty keyID
// becomes the key's RFC 7638 thumbprint.
func NewKey(signer crypto.Signer, keyID string) (*Key, error) {
	alg, err := algFor(signer, "")
	if err != nil {
		return nil, err
	}
	return newKey(signer, alg, keyID)
}

// ParseKey reads a private key from a JWK (JSON, with or without "kid" and
// "alg") or from PEM (PKCS#8 "PRIVATE KEY", SEC 1 "EC PRIVATE KEY" or
// PKCS#1 "RSA PRIVATE KEY"). Public keys and symmetric keys are refused.
func ParseKey(data []byte) (*Key, error) {
	data = bytes.TrimSpace(data)
	if bytes.HasPrefix(data, []byte("{")) {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(data); err != nil {
			return nil, fmt.Errorf("nvclient: the key is not a valid JWK: %w", err)
		}
		if jwk.IsPublic() {
			return nil, errors.New("nvclient: the JWK is a public key; the client needs its private key")
		}
		signer, ok := jwk.Key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("nvclient: a %T JWK cannot sign client assertions (use an EC P-256, Ed25519 or RSA key)", jwk.Key)
		}
		alg, err := algFor(signer, jwk.Algorithm)
		if err != nil {
			return nil, err
		}
		return newKey(signer, alg, jwk.KeyID)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("nvclient: the key is neither a JWK nor PEM")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("nvclient: PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("nvclient: PEM %s: %w", block.Type, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("nvclient: a %T key cannot sign", key)
	}
	return NewKey(signer, "")
}

// ReadKeyFile is ParseKey of a file's content.
func ReadKeyFile(path string) (*Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("nvclient: %w", err)
	}
	return ParseKey(data)
}

func algFor(signer crypto.Signer, declared string) (jose.SignatureAlgorithm, error) {
	var alg jose.SignatureAlgorithm
	switch k := signer.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return "", errors.New("nvclient: an EC key must be on P-256 (ES256)")
		}
		alg = jose.ES256
	case ed25519.PrivateKey:
		alg = jose.EdDSA
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return "", errors.New("nvclient: an RSA key must have at least 2048 bits")
		}
		alg = jose.RS256
		if declared == string(jose.PS256) {
			alg = jose.PS256
		}
	default:
		return "", fmt.Errorf("nvclient: unsupported key type %T (use EC P-256, Ed25519 or RSA)", signer)
	}
	if declared != "" && jose.SignatureAlgorithm(declared) != alg {
		return "", fmt.Errorf("nvclient: the JWK's alg %s does not fit its key (want %s)", declared, alg)
	}
	return alg, nil
}

func newKey(signer crypto.Signer, alg jose.SignatureAlgorithm, kid string) (*Key, error) {
	if kid == "" {
		tp, err := (&jose.JSONWebKey{Key: signer.Public()}).Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("nvclient: key thumbprint: %w", err)
		}
		kid = base64.RawURLEncoding.EncodeToString(tp)
	}
	return &Key{signer: signer, alg: alg, kid: kid}, nil
}
