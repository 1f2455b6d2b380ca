package nv

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strings"
	"time"
)

// API scopes of Number Verification v2.
const (
	ScopeOpenID            = "openid"
	ScopeVerify            = "number-verification:verify"
	ScopeDevicePhoneNumber = "number-verification:device-phone-number:read"
	// PurposePrefix starts a purpose scope value, e.g.
	// "dpv:FraudPreventionAndDetection" (CAMARA ICM, purpose as scope).
	PurposePrefix = "dpv:"
)

// MaxTokenLifetime is CAMARA's bound on a Number Verification access
// token's lifetime (and the default lifetime): the one definition that
// config, authz and the sandbox use.
const MaxTokenLifetime = 300 * time.Second

// Scopes is every scope value numbergate offers (purposes aside).
var Scopes = []string{ScopeOpenID, ScopeVerify, ScopeDevicePhoneNumber}

// AnyPurpose in a client's purposes onboards it for every dpv: purpose
// (used by the sandbox demo client).
const AnyPurpose = "dpv:*"

// Client is an onboarded API consumer (an app's backend). It authenticates
// with private_key_jwt only, so it carries public keys and never a secret.
type Client struct {
	ID           string
	RedirectURIs []string
	// JWKS is the client's public JSON Web Key Set, as JSON.
	JWKS        []byte
	Scopes      []string
	Purposes    []string
	RequirePKCE bool
	// QuotaPerDay caps the client's API calls per UTC day (0: no quota).
	QuotaPerDay int64
	CreatedAt   time.Time
}

// AllowsScope reports whether the client was onboarded for scope.
func (c Client) AllowsScope(scope string) bool {
	for _, s := range c.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// AllowsPurpose reports whether the client was onboarded for purpose.
func (c Client) AllowsPurpose(purpose string) bool {
	for _, p := range c.Purposes {
		if p == purpose || p == AnyPurpose {
			return true
		}
	}
	return false
}

// AuthMethod says how the subscriber behind a token was authenticated.
// Only network-based and SIM-based authentication let a token be used on
// the Number Verification API.
type AuthMethod string

const (
	AuthNetwork AuthMethod = "network"
	AuthSIM     AuthMethod = "sim"
	// AuthOther stands for anything else (the sandbox mints such tokens so
	// developers can exercise the 403 path).
	AuthOther AuthMethod = "other"
)

// ByMobileNetwork reports whether the method satisfies Number Verification.
func (m AuthMethod) ByMobileNetwork() bool { return m == AuthNetwork || m == AuthSIM }

// AccessToken is what the store keeps of an issued access token: never the
// token itself, only its SHA-256 hash.
type AccessToken struct {
	Hash       string // hex SHA-256 of the opaque token value
	GrantID    string // the authorization it came from ("" for sandbox tokens)
	ClientID   string
	MSISDN     PhoneNumber
	Scopes     []string
	Purpose    string
	AuthMethod AuthMethod
	// Source names the network source that identified the device
	// ("static", "radius", "cgnat", "header", "sandbox"), for audit.
	Source    string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// HasScope reports whether the token carries scope.
func (t AccessToken) HasScope(scope string) bool {
	for _, s := range t.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// SplitScope splits a space-separated scope string, dropping empty values.
func SplitScope(s string) []string { return strings.Fields(s) }

// SigningKey is one of the server's own private keys, as a JWK (JSON).
type SigningKey struct {
	ID         string
	Algorithm  string
	PrivateJWK []byte
	CreatedAt  time.Time
}

// Identity is what network-based authentication learnt about a device.
type Identity struct {
	MSISDN PhoneNumber
	Method AuthMethod
	Source string
}

// Connection is what the HTTP edge knows about the device making an
// /authorize request. Addr is the TCP peer, or the client address taken from
// X-Forwarded-For when the peer is a trusted proxy.
type Connection struct {
	Addr netip.AddrPort
	// Enrichment holds header-enrichment values, filled by the edge only when
	// the peer is a trusted enrichment proxy; keyed by canonical header name.
	Enrichment map[string]string
	// LoginHint is the raw login_hint parameter ("" when absent).
	LoginHint string
	At        time.Time
}

// StaticRoute maps an IP prefix to a subscriber number (the "static"
// network source, from the config).
type StaticRoute struct {
	Prefix netip.Prefix
	MSISDN PhoneNumber
}

// HashToken is how an opaque access token is kept and looked up: the hex
// SHA-256 of its value. The token itself is never stored.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	var buf [2 * sha256.Size]byte
	hex.Encode(buf[:], sum[:])
	return string(buf[:])
}
