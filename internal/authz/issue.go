package authz

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/numbergate/numbergate/internal/nv"
)

// One /token request, one store operation (issue 7).
//
// The engine reaches the store three times on a successful /token: its jti
// hook (the client assertion), SaveGrant with the code marked consumed,
// and the token handler. Written one by one, that is three durable writes,
// plus the usage record: four commit waits. Instead serveToken puts an
// issueSlot in the request's context; the jti hook and the redemption only
// leave their effect there, and the token handler stores all of it with
// the token and its usage record in one atomic nv.TokenIssuer.IssueToken.
//
// What the slot must keep true:
//   - An authenticated assertion is single use whatever the outcome: when
//     the request fails before the token handler (an unknown code, a PKCE
//     mismatch, ...), the jti still pending is consumed before the answer
//     is sent (serveToken), and before any revocation (revokeGrant).
//   - A replayed assertion authenticates nothing, so it changes nothing:
//     it is invalid_client, as when the jti was consumed first, and the
//     engine's revocation of the grant that follows is skipped (else
//     anyone holding an old assertion could burn a code).
//   - A lost redemption race is invalid_grant and the grant is revoked
//     (RFC 6749 §4.1.2), as before.
//   - An unavailable store changed nothing (IssueToken is all or nothing):
//     the revocation is skipped and the jti left free, so the client may
//     retry the same code once the store is back.
//
// Without a slot (a request not served by serveToken) every hook writes at
// once, as before.

// issueKey carries a /token request's issueSlot.
type issueKey struct{}

// jtiState is where the client assertion's jti stands in a request.
type jtiState int

const (
	jtiNone     jtiState = iota // no assertion seen
	jtiPending                  // authenticated, not stored yet
	jtiConsumed                 // stored
	jtiReplayed                 // found already used: the request is invalid_client
)

// issueSlot holds a /token request's writes until the token handler stores
// them. The engine serves a request on one goroutine, so it needs no lock.
type issueSlot struct {
	jti      nv.JTI
	jtiState jtiState
	// grantID and grantData are the redemption left by SaveGrant.
	grantID   string
	grantData []byte
	// keepGrant skips the engine's revocation of the grant.
	keepGrant bool
}

// issueSlotOf returns the request's slot, or nil outside serveToken.
func issueSlotOf(ctx context.Context) *issueSlot {
	slot, _ := ctx.Value(issueKey{}).(*issueSlot)
	return slot
}

// consumePending stores a pending jti on its own. A replayed one gives
// errJTIUsed and marks the request invalid_client, its grant kept.
func (sl *issueSlot) consumePending(ctx context.Context, st nv.Store, now time.Time) error {
	if sl.jtiState != jtiPending {
		return nil
	}
	err := st.ConsumeJTI(ctx, sl.jti.Issuer, sl.jti.ID, sl.jti.ExpiresAt, now)
	switch {
	case errors.Is(err, nv.ErrConsumed):
		sl.jtiState, sl.keepGrant = jtiReplayed, true
		return errJTIUsed
	case err != nil:
		return err
	}
	sl.jtiState = jtiConsumed
	return nil
}

// revokeGrant is the grantRevoked event. In /token, the jti still pending
// is consumed first: a replayed assertion revokes nothing.
func (s *engineStore) revokeGrant(ctx context.Context, id string) error {
	if sl := issueSlotOf(ctx); sl != nil {
		if sl.keepGrant {
			return nil
		}
		err := sl.consumePending(ctx, s.st, s.now())
		if sl.keepGrant {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return s.st.RevokeGrant(ctx, id)
}

// tokenUsage is the billing record of an issued token.
func tokenUsage(t nv.AccessToken, at time.Time) nv.UsageRecord {
	return nv.UsageRecord{At: at.UTC(), ClientID: t.ClientID, Event: nv.UsageTokenIssued, Operation: "token",
		Purpose: t.Purpose, Scopes: t.Scopes, Result: "OK", Source: t.Source}
}

// issueToken is the tokenIssued event (the engine's token handler): in
// /token, the one IssueToken of the request; elsewhere SaveToken and
// RecordUsage. Then OnToken is told.
func (s *Server) issueToken(ctx context.Context, tkn *goidc.Token, g *goidc.Grant) error {
	at, err := accessToken(tkn, g)
	if err != nil {
		return err
	}
	usage := tokenUsage(at, s.now())
	sl := issueSlotOf(ctx)
	switch {
	case sl == nil:
		if err := s.es.saveToken(ctx, at); err != nil {
			return err
		}
		// As an API call's record: a failure is logged, the token stands.
		if err := s.cfg.Store.RecordUsage(ctx, usage); err != nil {
			s.log.WarnContext(ctx, "usage record not stored", "client_id", at.ClientID, "event", usage.Event, "err", err)
		}
	case sl.grantID != g.ID:
		return fmt.Errorf("grant %s: a token was issued without its code being redeemed first", g.ID)
	default:
		ti := nv.TokenIssue{GrantData: sl.grantData, Token: at, Usage: usage, Now: s.now()}
		if sl.jtiState == jtiPending {
			ti.JTI = sl.jti
		}
		err := s.cfg.Store.IssueToken(ctx, ti)
		switch {
		case errors.Is(err, nv.ErrJTIReplayed):
			sl.jtiState, sl.keepGrant = jtiReplayed, true
			return goidc.WrapError(goidc.ErrorCodeInvalidClient, "invalid client", errJTIUsed)
		case errors.Is(err, nv.ErrConsumed), errors.Is(err, nv.ErrNotFound):
			return goidc.WrapError(goidc.ErrorCodeInvalidGrant, "invalid grant", errCodeRedeemed)
		case errors.Is(err, nv.ErrUnavailable):
			sl.keepGrant = true
			return err
		case err != nil:
			return err
		}
		if ti.JTI.ID != "" {
			sl.jtiState = jtiConsumed
		}
	}
	if s.cfg.OnToken != nil {
		s.cfg.OnToken(ctx, at)
	}
	return nil
}

// unavailableNoted reports whether a store call of the request failed as
// nv.ErrUnavailable (see unavailable.go).
func unavailableNoted(ctx context.Context) bool {
	f, ok := ctx.Value(unavailableKey{}).(*unavailableFlag)
	return ok && f.set.Load()
}
