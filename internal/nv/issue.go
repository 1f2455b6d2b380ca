package nv

import (
	"context"
	"fmt"
	"time"
)

// ErrJTIReplayed is IssueToken's answer when the client assertion's jti was
// already consumed. It wraps ErrConsumed, so that a caller can tell a
// replayed assertion (errors.Is(err, ErrJTIReplayed)) from a lost
// redemption race (ErrConsumed alone).
var ErrJTIReplayed = fmt.Errorf("jti %w", ErrConsumed)

// JTI is a JWT id to consume: the issuer's jti, remembered until ExpiresAt.
type JTI struct {
	Issuer    string
	ID        string
	ExpiresAt time.Time
}

// TokenIssue is everything a successful /token request stores: the client
// assertion's jti consumed, the grant's code redeemed, the access token and
// its usage record.
type TokenIssue struct {
	// JTI is consumed first; an ID of "" consumes none.
	JTI JTI
	// GrantData is the grant's record once redeemed; the grant is
	// Token.GrantID, which must not be "".
	GrantData []byte
	Token     AccessToken
	// Usage is the token_issued record, stored with the token.
	Usage UsageRecord
	// Now decides the jti's and the grant's expiry, as in ConsumeJTI and
	// RedeemGrant.
	Now time.Time
}

// TokenIssuer stores a /token request's writes as one operation: one
// transaction, one commit wait, instead of four.
type TokenIssuer interface {
	// IssueToken, atomically (all or nothing: on any error nothing is
	// changed), consumes ti.JTI as ConsumeJTI does (ErrJTIReplayed, checked
	// first), redeems the grant as RedeemGrant does (ErrConsumed when the
	// code was already redeemed, ErrNotFound when the grant is gone,
	// revoked or expired), stores the token as SaveToken does (only while
	// the grant exists and is not revoked; ErrAlreadyExists for a taken
	// hash) and stores the usage record. Concurrent callers on the same
	// code or the same issuer's jti, on any node: exactly one wins.
	// (PostgreSQL: one transaction, locking as SaveToken and RedeemGrant
	// do: the grant row is held from the redemption's UPDATE to the
	// commit, so a concurrent RevokeGrant waits and then deletes the
	// token.)
	IssueToken(ctx context.Context, ti TokenIssue) error
}
