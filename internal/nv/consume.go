package nv

import (
	"context"
	"time"
)

// UsageRecorder decides the usage record of an API call from the token its
// caller presented, once the store has consumed it: err is nil or
// ErrExpired (the token is consumed either way). It returns the record and
// whether to store it. It is called inside the store's write, so it must be
// a pure, quick function of its arguments (it may be called more than once
// for one consumption: only its last answer counts).
type UsageRecorder func(t AccessToken, err error) (UsageRecord, bool)

// TokenUsageStore consumes an access token and stores the usage record of
// the API call it answers in one atomic write (one commit, one disk sync
// on the embedded store), instead of ConsumeToken followed by RecordUsage.
type TokenUsageStore interface {
	// ConsumeTokenFor is ConsumeToken (same results and errors) that also
	// stores the record that record returns for the consumed token, in the
	// same atomic operation: the record is stored if and only if this call
	// consumed the token (nil or ErrExpired). An unknown, revoked or
	// already used token stores nothing and record is not called. If the
	// record cannot be stored, the token is not consumed either and the
	// error is returned.
	ConsumeTokenFor(ctx context.Context, hash string, now time.Time, record UsageRecorder) (AccessToken, error)
}
