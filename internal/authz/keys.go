package authz

import (
	"bytes"
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
	"hash"
	"sort"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/numbergate/numbergate/internal/nv"
)

// pairwiseAlg marks the store entry holding the secret from which pairwise
// subject identifiers are derived (it is not a JOSE algorithm and is never
// published).
const pairwiseAlg = "pairwise-hmac-sha256"

// Signing keys rotate without a restart and without a moment where a node
// signs with a key another node does not publish:
//
//   - a signing key's CreatedAt is when it starts signing. The first key is
//     created at first start with CreatedAt = now; `numbergate keys rotate`
//     (RotateSigningKey) adds one whose CreatedAt is in the future, so every
//     node publishes it for the activation delay before any signs with it;
//   - the key that signs is the one with the latest CreatedAt not after now;
//   - a key that a newer one superseded at T stays published until T +
//     keyRetention, after which no ID token it signed can still be presented;
//   - nodes reload the keys from the store every keyRefresh (on a request
//     that needs them; a failed reload keeps the keys they have).
//
// The pairwise subject secret lives apart from this schedule: it is never
// published, never rotated (that would change every sub), and keys rotate
// leaves it alone.
const (
	// keyRetention is how long a superseded key stays published: the ID
	// token lifetime plus the clock skew a relying party may allow.
	keyRetention = nv.MaxTokenLifetime + DefaultClockSkew + time.Minute
	keyRefresh   = 2 * time.Second
)

// keys holds the server's signing keys and pairwise secret, loaded from the
// store or created there on first start so that a restart keeps them.
type keys struct {
	st       nv.KeyStore
	now      func() time.Time
	pairwise []byte
	// macs are HMAC-SHA256 states keyed with pairwise, reused by mac (two
	// per flow) instead of keying a new one each time.
	macs sync.Pool

	mu       sync.Mutex
	loadedAt time.Time
	all      []nv.SigningKey // signing keys only, oldest first
	// parsed is each signing key of all as a JWK, by id, parsed once: a
	// reload keeps the parsed key of an unchanged entry, so the engine signs
	// with the same *ecdsa.PrivateKey every time (no JSON parse per ID
	// token, and crypto/ecdsa's per-key cache stays warm).
	parsed map[string]parsedKey
}

// parsedKey is a stored signing key with its parsed JWK.
type parsedKey struct {
	data []byte // PrivateJWK as stored
	jwk  jose.JSONWebKey
}

func loadOrCreateKeys(ctx context.Context, st nv.KeyStore) (*keys, error) {
	k := &keys{st: st, now: time.Now}
	if err := k.load(ctx); err != nil {
		return nil, err
	}
	if k.pairwise == nil {
		if err := createPairwiseSecret(ctx, st); err != nil {
			return nil, err
		}
		// When several nodes start at once, the store decides which
		// secret won (its id is fixed).
		if err := k.load(ctx); err != nil {
			return nil, err
		}
	}
	if len(k.all) == 0 {
		// Every node on this store derives the same id for the first key
		// from the shared pairwise secret, so when several start at once
		// one insert wins and all of them publish and sign with that key
		// (with random ids each node added its own, and a node could sign
		// with a key the others did not publish until their next reload).
		if err := createSigningKey(ctx, st, time.Now(), k.mac("initial-signing-key", "")[:16]); err != nil {
			return nil, err
		}
	}
	// Load again: when several nodes start at once, the store decides.
	if err := k.load(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// load reads the keys from the store.
func (k *keys) load(ctx context.Context) error {
	all, err := k.st.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	k.mu.Lock()
	prev := k.parsed
	k.mu.Unlock()
	var signing []nv.SigningKey
	var pairwise []byte
	parsed := make(map[string]parsedKey, len(all))
	for _, sk := range all {
		if sk.Algorithm == pairwiseAlg {
			if pairwise == nil {
				pairwise = sk.PrivateJWK
			}
			continue
		}
		if p, ok := prev[sk.ID]; ok && bytes.Equal(p.data, sk.PrivateJWK) {
			parsed[sk.ID] = p
		} else {
			var jwk jose.JSONWebKey
			if err := json.Unmarshal(sk.PrivateJWK, &jwk); err != nil {
				return fmt.Errorf("signing key %s is unreadable: %w", sk.ID, err)
			}
			parsed[sk.ID] = parsedKey{data: sk.PrivateJWK, jwk: jwk}
		}
		signing = append(signing, sk)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.pairwise == nil {
		k.pairwise = pairwise
	}
	k.all, k.parsed = signing, parsed
	k.loadedAt = k.now()
	return nil
}

// jwks is the engine's key set at this moment: the signing key first (the
// engine signs with the first key of the algorithm), then every other key
// to publish. It reloads the keys from the store every keyRefresh.
func (k *keys) jwks(ctx context.Context) (goidc.JSONWebKeySet, error) {
	k.mu.Lock()
	stale := k.now().Sub(k.loadedAt) >= keyRefresh
	if stale {
		k.loadedAt = k.now() // one reload at a time; a failure waits for the next period
	}
	k.mu.Unlock()
	if stale {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		_ = k.load(rctx) // on failure the keys already loaded stay in use
		cancel()
	}
	k.mu.Lock()
	all, parsed := k.all, k.parsed
	k.mu.Unlock()
	var set goidc.JSONWebKeySet
	for _, st := range KeySchedule(all, k.now()) {
		if !st.Published {
			continue
		}
		jwk := parsed[st.Key.ID].jwk // a copy; the key inside is shared, never changed
		if st.Signing {
			set.Keys = append([]jose.JSONWebKey{jwk}, set.Keys...)
		} else {
			set.Keys = append(set.Keys, jwk)
		}
	}
	return set, nil
}

// KeyState is where a signing key stands in the rotation schedule at a
// given time.
type KeyState struct {
	Key nv.SigningKey
	// Signing: the key nodes sign with now (exactly one, once any key's
	// CreatedAt has come).
	Signing bool
	// Published: the key is in the JWKS (upcoming, signing, or superseded
	// less than keyRetention ago).
	Published bool
	// SignsFrom is when the key starts signing (its CreatedAt).
	SignsFrom time.Time
	// SupersededAt is when the next key starts signing (zero for the
	// newest); PublishedUntil is SupersededAt plus the retention.
	SupersededAt, PublishedUntil time.Time
}

// State names the state for people: "next", "signing", "published"
// (superseded, still verifiable) or "retired".
func (s KeyState) State() string {
	switch {
	case s.Signing:
		return "signing"
	case s.Published && s.SupersededAt.IsZero():
		return "next"
	case s.Published:
		return "published"
	}
	return "retired"
}

// KeySchedule computes the state at now of every signing key (the pairwise
// secret is skipped), oldest first.
func KeySchedule(all []nv.SigningKey, now time.Time) []KeyState {
	var ks []nv.SigningKey
	for _, k := range all {
		if k.Algorithm != pairwiseAlg {
			ks = append(ks, k)
		}
	}
	sort.SliceStable(ks, func(i, j int) bool { return ks[i].CreatedAt.Before(ks[j].CreatedAt) })
	out := make([]KeyState, len(ks))
	signing := -1
	for i, k := range ks {
		out[i] = KeyState{Key: k, SignsFrom: k.CreatedAt}
		if !k.CreatedAt.After(now) {
			signing = i
		}
	}
	for i := range out {
		if i+1 < len(out) {
			out[i].SupersededAt = out[i+1].SignsFrom
			out[i].PublishedUntil = out[i].SupersededAt.Add(keyRetention)
		}
		switch {
		case i == signing:
			out[i].Signing, out[i].Published = true, true
		case i > signing: // upcoming
			out[i].Published = true
		default: // superseded
			out[i].Published = now.Before(out[i].PublishedUntil)
		}
	}
	return out
}

// RotateSigningKey adds a new ES256 signing key that starts signing at
// signsFrom (now plus the activation delay): until then nodes publish it
// next to the current key. It returns the new key's id.
func RotateSigningKey(ctx context.Context, st nv.KeyStore, signsFrom time.Time) (string, error) {
	k, err := newSigningKey(signsFrom, randomID(12))
	if err != nil {
		return "", err
	}
	if err := st.AddSigningKey(ctx, k); err != nil {
		return "", fmt.Errorf("store signing key: %w", err)
	}
	return k.ID, nil
}

func newSigningKey(signsFrom time.Time, kid string) (nv.SigningKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nv.SigningKey{}, err
	}
	jwk := jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: string(goidc.ES256), Use: "sig"}
	data, err := jwk.MarshalJSON()
	if err != nil {
		return nv.SigningKey{}, err
	}
	return nv.SigningKey{ID: kid, Algorithm: string(goidc.ES256), PrivateJWK: data, CreatedAt: signsFrom}, nil
}

func createSigningKey(ctx context.Context, st nv.KeyStore, now time.Time, kid string) error {
	k, err := newSigningKey(now, kid)
	if err != nil {
		return err
	}
	err = st.AddSigningKey(ctx, k)
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
	m, _ := k.macs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, k.pairwise)
	} else {
		m.Reset()
	}
	in := make([]byte, 0, len(label)+1+len(v)+sha256.Size)
	in = append(append(append(in, label...), 0), v...)
	m.Write(in)
	sum := m.Sum(in[len(in):])
	k.macs.Put(m)
	var out [43]byte // base64url of 32 bytes, unpadded
	return string(base64.RawURLEncoding.AppendEncode(out[:0], sum))
}

func randomID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
