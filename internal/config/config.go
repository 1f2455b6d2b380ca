// Package config owns numbergate's configuration file: one typed Config,
// decoded strictly from YAML (unknown keys are errors), overridden by a few
// environment variables, and validated all at once so that every problem is
// reported in one error with its YAML path and line.
package config

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

// Defaults and limits.
const (
	DefaultAdminListen   = "127.0.0.1:9090"
	DefaultIdleTimeout   = 2 * time.Hour
	DefaultTokenLifetime = nv.MaxTokenLifetime
	// MaxTokenLifetime is the CAMARA limit on an access token's lifetime.
	MaxTokenLifetime    = nv.MaxTokenLifetime
	DefaultCodeLifetime = 60 * time.Second
	MaxCodeLifetime     = 10 * time.Minute
	// DefaultClockSkew is how far a client's clock may be off for iat,
	// nbf and exp of its assertions and request objects.
	DefaultClockSkew = 5 * time.Second
	MaxClockSkew     = time.Minute
)

// DefaultOrder is the order sources are tried in when network.order is not
// set (only configured sources take part).
var DefaultOrder = []string{nv.SourceHeader, nv.SourceCGNAT, nv.SourceRADIUS, nv.SourceStatic}

// Environment variables that override the file.
const (
	EnvListen      = "NUMBERGATE_LISTEN"
	EnvAdminListen = "NUMBERGATE_ADMIN_LISTEN"
	EnvDataDir     = "NUMBERGATE_DATA_DIR"
)

// Config is a validated configuration for `numbergate serve` and the
// operator commands.
type Config struct {
	// Listen is the public listener (authorization server and API), host:port.
	Listen string
	// Issuer is the issuer URL clients see: absolute http(s), no query,
	// fragment or trailing slash.
	Issuer string
	// AdminListen serves metrics, health and readiness (default DefaultAdminListen).
	AdminListen string
	// DataDir holds the embedded SQLite store (not needed with the
	// postgres driver). Load makes a relative
	// data_dir relative to the configuration file's directory.
	DataDir string
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// LogLevel is debug, info (default), warn or error.
	LogLevel slog.Level
	Network  Network
	Auth     Auth
	// Store selects the store (default: SQLite in DataDir).
	Store Store
	// Limits are the public listener's rate limits (per node).
	Limits Limits
	// Usage configures the usage records kept for billing.
	Usage Usage
	// ProxyProtocol, when set, makes the public listener read PROXY
	// headers from (and only from) its trusted peers.
	ProxyProtocol *ProxyProtocol
	// TLS, when set, makes the public listener serve HTTPS (HTTP/2) with
	// this certificate; AdminTLS does the same for the admin listener.
	TLS, AdminTLS *TLS
}

// Usage configures the usage records (one per API call and token issued).
type Usage struct {
	// Retention is how long records are kept (default DefaultUsageRetention).
	Retention time.Duration
}

// DefaultUsageRetention keeps usage records for 90 days.
const DefaultUsageRetention = 90 * 24 * time.Hour

// Network configures the sources of network-based authentication.
type Network struct {
	// Order lists the configured sources in the order they are tried
	// (names are the nv.Source* constants).
	Order  []string
	Static []nv.StaticRoute
	// RADIUS, CGNAT and HeaderEnrichment are nil when not configured.
	RADIUS           *RADIUS
	CGNAT            *CGNAT
	HeaderEnrichment *HeaderEnrichment
}

// Configured reports whether source (a Source* name) is configured.
func (n Network) Configured(source string) bool {
	switch source {
	case nv.SourceHeader:
		return n.HeaderEnrichment != nil
	case nv.SourceCGNAT:
		return n.CGNAT != nil
	case nv.SourceRADIUS:
		return n.RADIUS != nil
	case nv.SourceStatic:
		return len(n.Static) > 0
	}
	return false
}

// RADIUS configures the RADIUS accounting listener.
type RADIUS struct {
	// Listen is the UDP host:port.
	Listen  string
	Clients []RADIUSClient
	// IdleTimeout expires a session with no update for this long.
	IdleTimeout time.Duration
}

// RADIUSClient is a gateway (NAS) allowed to send accounting, by source
// address.
type RADIUSClient struct {
	// Name identifies the client in the sessions it records: only packets
	// authenticated against an entry of this name may update, stop or purge
	// them (Accounting-On/Off). Default: the canonical CIDR. Entries that
	// share a name are one client (a gateway's IPv4 and IPv6 addresses).
	Name   string
	CIDR   netip.Prefix
	Secret Secret
	// RequireMessageAuthenticator drops this client's packets without a
	// valid Message-Authenticator (RFC 3579).
	RequireMessageAuthenticator bool
}

// CGNAT configures the carrier-NAT port-block allocation feed.
type CGNAT struct {
	// SyslogListen is a UDP host:port for syslog records ("" for none).
	SyslogListen string
	// Files are allocation logs to read.
	Files []string
	// Senders, when set, are the only source addresses (the NATs) whose
	// syslog datagrams are accepted.
	Senders []netip.Prefix
}

// HeaderEnrichment configures header enrichment by trusted proxies.
type HeaderEnrichment struct {
	// Proxies are the TCP peers allowed to set the headers.
	Proxies []netip.Prefix
	// Headers are canonical header names (such as "X-Msisdn").
	Headers []string
}

// Auth configures the authorization server's lifetimes.
type Auth struct {
	// TokenLifetime is the access token lifetime (at most MaxTokenLifetime).
	TokenLifetime time.Duration
	// CodeLifetime is the authorization code lifetime.
	CodeLifetime time.Duration
	// ClockSkew is the tolerance for clients' clocks (default
	// DefaultClockSkew, at most MaxClockSkew).
	ClockSkew time.Duration
}

// Secret is a shared secret from the configuration. Formatting it prints
// "[redacted]", so it cannot reach a log or an error by accident; convert
// it with string(s) or []byte(s) where the value is really needed.
type Secret string

func (Secret) String() string   { return "[redacted]" }
func (Secret) GoString() string { return `"[redacted]"` }

// MarshalText redacts the secret in JSON, YAML and similar encodings.
func (Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// Limits are the rate limits of the public listener. They hold per node:
// N nodes let through up to N times each rate. A zero Rate is off.
type Limits struct {
	// AuthorizePerAddress limits /authorize per device address (after
	// trusted proxies; IPv6 per /64).
	AuthorizePerAddress Rate
	// TokenPerClient limits /token per client.
	TokenPerClient Rate
	// APIPerClient limits Number Verification API calls per client.
	APIPerClient Rate
}

// Default rate limits of serve (the sandbox has none).
var (
	DefaultAuthorizePerAddress = Rate{N: 10, Per: time.Second}
	DefaultTokenPerClient      = Rate{N: 200, Per: time.Second}
	DefaultAPIPerClient        = Rate{N: 500, Per: time.Second}
)

// MaxRateN bounds N in a rate.
const MaxRateN = 1_000_000

// Rate is N events per Per, in bursts of up to N; the zero Rate is off.
// It is written "N/s", "N/m" or "N/h", or "off".
type Rate struct {
	N   int
	Per time.Duration
}

// Off reports whether the rate is the zero Rate (no limit).
func (r Rate) Off() bool { return r.N == 0 }

func (r Rate) String() string {
	switch {
	case r.Off():
		return "off"
	case r.Per == time.Minute:
		return fmt.Sprintf("%d/m", r.N)
	case r.Per == time.Hour:
		return fmt.Sprintf("%d/h", r.N)
	}
	return fmt.Sprintf("%d/s", r.N)
}
