package nv

import (
	"context"
	"net/netip"
	"time"
)

// ClientStore keeps onboarded clients.
type ClientStore interface {
	// PutClient creates or replaces a client.
	PutClient(ctx context.Context, c Client) error
	// Client returns ErrNotFound for an unknown id.
	Client(ctx context.Context, id string) (Client, error)
	Clients(ctx context.Context) ([]Client, error)
	// DeleteClient returns ErrNotFound for an unknown id.
	DeleteClient(ctx context.Context, id string) error
}

// KeyStore keeps the server's signing keys so a restart keeps them.
type KeyStore interface {
	// AddSigningKey returns ErrAlreadyExists if the id is taken.
	AddSigningKey(ctx context.Context, k SigningKey) error
	// SigningKeys returns all keys, oldest first.
	SigningKeys(ctx context.Context) ([]SigningKey, error)
}

// JTIStore remembers consumed JWT ids (client assertions, request objects).
type JTIStore interface {
	// ConsumeJTI records (issuer, jti) until expiresAt. It returns
	// ErrConsumed when the same issuer's jti is recorded and not expired at
	// now; the same jti from another issuer is independent. Atomic (one
	// statement).
	ConsumeJTI(ctx context.Context, issuer, jti string, expiresAt, now time.Time) error
}

// AuthSession is an authorization request in progress, kept as an opaque
// record of the authorization engine.
type AuthSession struct {
	ID        string
	Data      []byte
	ExpiresAt time.Time
}

// Grant is an authorization granted at /authorize and redeemed at /token,
// kept as an opaque record of the authorization engine plus the fields the
// store must index or enforce.
type Grant struct {
	ID string
	// AuthCode is the SHA-256 hex of the authorization code (the authz
	// adapter hashes it, like tokens); stores treat it as an opaque unique
	// string. "" when there is none to look up.
	AuthCode     string
	CodeConsumed bool
	Revoked      bool
	Data         []byte
	ExpiresAt    time.Time
}

// AuthStore keeps authorization sessions and grants.
type AuthStore interface {
	SaveAuthSession(ctx context.Context, s AuthSession) error
	// AuthSession returns ErrNotFound for an unknown id or one expired at now.
	AuthSession(ctx context.Context, id string, now time.Time) (AuthSession, error)
	// CreateGrant stores a new grant (ErrAlreadyExists if the id or code is taken).
	CreateGrant(ctx context.Context, g Grant) error
	// Grant returns ErrNotFound for an unknown id.
	Grant(ctx context.Context, id string) (Grant, error)
	// GrantByAuthCode returns ErrNotFound for an unknown code or a revoked grant.
	GrantByAuthCode(ctx context.Context, code string) (Grant, error)
	// RedeemGrant atomically marks the grant's code consumed and stores
	// data. It returns ErrConsumed if the code was already consumed (by this
	// or another node) and ErrNotFound if the grant is gone, revoked, or its
	// ExpiresAt is not after now.
	RedeemGrant(ctx context.Context, id string, data []byte, now time.Time) error
	// RevokeGrant marks the grant revoked and deletes every access token
	// issued from it. Revoking an unknown grant is not an error.
	RevokeGrant(ctx context.Context, id string) error
}

// TokenStore keeps access tokens by hash.
type TokenStore interface {
	// SaveToken returns ErrAlreadyExists if the hash is taken. A token with
	// a GrantID is stored only if that grant exists and is not revoked,
	// checked and inserted in one atomic step (ErrNotFound otherwise), so
	// that a token is never stored for a revoked grant, whatever the
	// interleaving with RevokeGrant. (PostgreSQL: the insert must lock the
	// grant row, e.g. INSERT ... SELECT ... FROM grants WHERE id=$1 AND NOT
	// revoked FOR SHARE, so a concurrent RevokeGrant's UPDATE waits and its
	// DELETE then sees the token.)
	SaveToken(ctx context.Context, t AccessToken) error
	// ConsumeToken atomically marks the token used and returns it. It
	// returns ErrNotFound for an unknown hash (or one revoked), ErrConsumed
	// if it was already used, and ErrExpired (with the token) if its
	// lifetime ended before now; an expired token is consumed all the same.
	ConsumeToken(ctx context.Context, hash string, now time.Time) (AccessToken, error)
	// Token returns a token by hash without consuming it (ErrNotFound).
	Token(ctx context.Context, hash string) (AccessToken, error)
}

// StaticRouteStore keeps the static network map (prefix -> number).
type StaticRouteStore interface {
	// ReplaceStaticRoutes replaces the whole map in one transaction.
	ReplaceStaticRoutes(ctx context.Context, routes []StaticRoute) error
	StaticRoutes(ctx context.Context) ([]StaticRoute, error)
}

// UsageStore counts each client's API calls per UTC day, for the daily
// quota of nv.Client.QuotaPerDay. The count lives in the store so that every
// node sharing it, and a restart, see the same count.
type UsageStore interface {
	// TakeDailyQuota counts one API call of clientID on day (its UTC date;
	// the time of day is ignored) if fewer than limit (>= 1) were counted
	// for that client and date, and reports whether it counted it; false
	// means the quota is spent and nothing changed. Atomic: concurrent
	// callers, on any node, never count more than limit. Collect deletes
	// the counts of dates before the day before now. (PostgreSQL: one
	// statement, INSERT INTO api_usage_daily (client_id, day, calls)
	// VALUES ($1, $2, 1) ON CONFLICT (client_id, day) DO UPDATE SET calls =
	// api_usage_daily.calls + 1 WHERE api_usage_daily.calls < $3, counted
	// when it affected a row.)
	TakeDailyQuota(ctx context.Context, clientID string, day time.Time, limit int64) (bool, error)

	// RecordUsage stores one usage record (issue 9 item 13: billing). An
	// issued token's record is stored by IssueToken with the token, an API
	// call's that consumed its token by ConsumeTokenFor; RecordUsage
	// stores the others, and must stay one small INSERT (PostgreSQL:
	// INSERT INTO usage_records ... VALUES ...).
	RecordUsage(ctx context.Context, r UsageRecord) error
	// UsageRecords returns the records with from <= At < to, oldest first
	// (ties in insertion order).
	UsageRecords(ctx context.Context, from, to time.Time) ([]UsageRecord, error)
	// ExpireUsage deletes the records with At before before (the retention)
	// and returns how many.
	ExpireUsage(ctx context.Context, before time.Time) (int, error)
}

// Usage record events.
const (
	UsageAPICall     = "api_call"
	UsageTokenIssued = "token_issued"
)

// UsageRecord is one billable event: a Number Verification API call by a
// client (whatever its result) or an access token issued to it. It never
// holds the subscriber's number.
type UsageRecord struct {
	At       time.Time
	ClientID string
	// Event is UsageAPICall or UsageTokenIssued.
	Event string
	// Operation is the API's operationId (phoneNumberVerify,
	// phoneNumberShare) or "token".
	Operation string
	Purpose   string
	Scopes    []string
	// Result is "OK" or the CAMARA error code of the answer.
	Result string
	// Source is the network source that identified the device.
	Source string
}

// Store is everything a backend provides. Collect removes expired rows.
type Store interface {
	ClientStore
	KeyStore
	JTIStore
	AuthStore
	TokenStore
	StaticRouteStore
	NetworkSessionStore
	UsageStore
	TokenIssuer
	TokenUsageStore
	// Collect deletes rows whose lifetime ended before now and returns how
	// many it removed.
	Collect(ctx context.Context, now time.Time) (int, error)
	// Ping does a real round-trip (readiness).
	Ping(ctx context.Context) error
	Close() error
}

// Resolver answers "which subscriber is behind this connection now?". It
// returns ErrUnknownDevice when it cannot tell.
type Resolver interface {
	Resolve(ctx context.Context, c Connection) (Identity, error)
}

// NetworkSession is a data session learnt from the operator's network
// (RADIUS accounting): an address prefix (an IPv4 /32, an IPv6 /64, or any
// other length a Framed-IPv6-Prefix carries) held by a number.
type NetworkSession struct {
	Prefix    netip.Prefix // the address, e.g. /32 for IPv4, /64 for IPv6
	MSISDN    PhoneNumber
	SessionID string // Acct-Session-Id
	NAS       string // NAS-IP-Address or NAS-Identifier of the gateway
	IMSI      string // 3GPP-IMSI when present
	StartedAt time.Time
	UpdatedAt time.Time
	// Client names the configured RADIUS client entry the packet
	// authenticated against (its name in the config, by default its
	// canonical CIDR). Sessions from static routes or other sources leave
	// it "". Only that client's packets may update, stop or purge the
	// session.
	Client string
}

// NetworkSessionStore keeps network sessions (RADIUS accounting) and CGNAT
// port-block allocations. Every method is atomic.
type NetworkSessionStore interface {
	// StartSession stores s for its prefix, replacing any previous holder.
	StartSession(ctx context.Context, s NetworkSession) error
	// UpsertSession updates the session for s.Prefix if it belongs to
	// s.Client, or creates it if there is none (Interim-Update). A session
	// on that prefix held by another client is left untouched and
	// ErrNotFound is returned; one held by no client (recorded before
	// sessions had one) is adopted by s.Client. When the stored session has the same
	// SessionID its StartedAt is kept; otherwise s replaces it whole.
	UpsertSession(ctx context.Context, s NetworkSession) error
	// StopSession removes the session on prefix only if both client (or no
	// client: a session recorded before sessions had one) and sessionID
	// match; it reports whether a row was removed.
	StopSession(ctx context.Context, client string, prefix netip.Prefix, sessionID string) (bool, error)
	// PurgeClient removes every session of client last updated before
	// before (Accounting-On/Off: only sessions older than the On/Off
	// packet) and returns how many.
	PurgeClient(ctx context.Context, client string, before time.Time) (int, error)
	// SessionFor returns the most specific session whose prefix contains
	// addr, updated at or after notBefore, whatever the prefix length (any
	// length a Framed-IPv6-Prefix or a static route can carry); an
	// IPv4-mapped IPv6 address is looked up as IPv4. ErrNotFound otherwise.
	SessionFor(ctx context.Context, addr netip.Addr, notBefore time.Time) (NetworkSession, error)
	// NetworkSessions lists all sessions.
	NetworkSessions(ctx context.Context) ([]NetworkSession, error)
	// ExpireSessions removes sessions not updated since before and returns how many.
	ExpireSessions(ctx context.Context, before time.Time) (int, error)

	// AllocatePortBlock records a CGNAT allocation (b.End is zero). A
	// retransmitted identical allocation is harmless.
	AllocatePortBlock(ctx context.Context, b PortBlock) error
	// ReleasePortBlock ends the open allocation of public ports
	// first..last to private at time at; it reports whether one was open.
	ReleasePortBlock(ctx context.Context, private, public netip.Addr, first, last uint16, at time.Time) (bool, error)
	// PrivateAddrFor maps a public address and port seen at time at back to
	// the private address that held it then (ErrNotFound otherwise).
	PrivateAddrFor(ctx context.Context, public netip.AddrPort, at time.Time) (netip.Addr, error)
}

// PortBlock is a CGNAT port-block allocation: between Start and End (End
// zero while still allocated) the ports First..Last of Public belonged to
// Private.
type PortBlock struct {
	Private   netip.Addr
	Public    netip.Addr
	FirstPort uint16
	LastPort  uint16
	Start     time.Time
	End       time.Time
}
