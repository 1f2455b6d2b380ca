package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/numbergate/numbergate/internal/nv"
)

// pairwiseAlg marks the store entry holding the secret from which pairwise
// subject identifiers are derived (it is not a JOSE algorithm and is never
// published).
const pairwiseAlg = "pairwise-hmac-sha256"

// keys holds the server's signing key and pairwise secret, loaded from the
// store or created there on first start so that a restart keeps them.
type keys struct {
	jwks     goidc.JSONWebKeySet // private signing keys
	pairwise []byte
}

func loadOrCreateKeys(ctx context.Context, st nv.KeyStore) (*keys, error) {
	k, err := loadKeys(ctx, st)
	if err != nil {
		return nil, err
	}
	if len(k.jwks.Keys) == 0 {
		if err := createSigningKey(ctx, st); err != nil {
			return nil, err
		}
	}
	if k.pairwise == nil {
		if err := createPairwiseSecret(ctx, st); err != nil {
			return nil, err
		}
	}
	// Load again: when several nodes start at once, the store decides.
	return loadKeys(ctx, st)
}

func loadKeys(ctx context.Context, st nv.KeyStore) (*keys, error) {
	all, err := st.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	k := &keys{}
	for _, sk := range all {
		if sk.Algorithm == pairwiseAlg {
			if k.pairwise == nil {
				k.pairwise = sk.PrivateJWK
			}
			continue
		}
		var jwk jose.JSONWebKey
		if err := json.Unmarshal(sk.PrivateJWK, &jwk); err != nil {
			return nil, fmt.Errorf("signing key %s is unreadable: %w", sk.ID, err)
		}
		k.jwks.Keys = append(k.jwks.Keys, jwk)
	}
	return k, nil
}

func createSigningKey(ctx context.Context, st nv.KeyStore) error {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	kid := randomID(12)
	jwk := jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: string(goidc.ES256), Use: "sig"}
	data, err := jwk.MarshalJSON()
	if err != nil {
		return err
	}
	err = st.AddSigningKey(ctx, nv.SigningKey{ID: kid, Algorithm: string(goidc.ES256), PrivateJWK: data, CreatedAt: time.Now()})
	if err != nil && !errors.Is(err, nv.ErrAlreadyExists) {
		return fmt.Errorf("store signing key: %w", err)
	}
	return nil
}

func createPairwiseSecret(ctx context.Context, st nv.KeyStore) error {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	err := st.AddSigningKey(ctx, nv.SigningKey{ID: "pairwise", Algorithm: pairwiseAlg, PrivateJWK: secret, CreatedAt: time.Now()})
	if err != nil && !errors.Is(err, nv.ErrAlreadyExists) {
		return fmt.Errorf("store pairwise secret: %w", err)
	}
	return nil
}

// subscriberID is the grant subject: a keyed hash of the number, stable for
// one subscriber, never the number itself.
func (k *keys) subscriberID(msisdn nv.PhoneNumber) string {
	return k.mac("subscriber", string(msisdn))
}

// pairwiseSubject derives the ID token sub for one client (OIDC Core §8.1):
// different clients see unrelated identifiers for the same subscriber.
func (k *keys) pairwiseSubject(_ context.Context, sub string, c *goidc.Client) string {
	return k.mac("pairwise", c.ID+"\x00"+sub)
}

func (k *keys) mac(label, v string) string {
	m := hmac.New(sha256.New, k.pairwise)
	m.Write([]byte(label + "\x00" + v))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func randomID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
