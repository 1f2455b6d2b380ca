package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/numbergate/numbergate/internal/nv"
)

// querier runs statements on the pool or inside a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// IssueToken stores a /token request's writes in one transaction, with
// the statements of ConsumeJTI, RedeemGrant, SaveToken and RecordUsage, in
// that order (so every caller takes its locks in the same order: the jti,
// then the grant, then the token's hash). A failed step rolls the whole
// transaction back.
//
// Locking: the jti's INSERT ... ON CONFLICT makes a concurrent caller with
// the same issuer's jti wait for this transaction, then find it consumed
// (or insert it, if this one rolled back). The redemption's UPDATE locks
// the grant row until the commit: a concurrent redemption of the same code
// waits, then finds it consumed; a concurrent RevokeGrant's UPDATE waits,
// and its DELETE then sees the token. The token's INSERT ... SELECT ... FOR
// SHARE takes nothing new (this transaction holds the row already) and
// still refuses a grant gone or revoked.
func (s *Store) IssueToken(ctx context.Context, ti nv.TokenIssue) error {
	if ti.Token.GrantID == "" {
		return errors.New("postgres: issue token: the token names no grant to redeem")
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if ti.JTI.ID != "" {
			err := consumeJTI(ctx, tx, ti.JTI.Issuer, ti.JTI.ID, ti.JTI.ExpiresAt, ti.Now)
			if errors.Is(err, nv.ErrConsumed) {
				return nv.ErrJTIReplayed
			}
			if err != nil {
				return fmt.Errorf("consume jti: %w", err)
			}
		}
		if err := redeemGrant(ctx, tx, ti.Token.GrantID, ti.GrantData, ti.Now); err != nil {
			return fmt.Errorf("redeem grant: %w", err)
		}
		if err := saveToken(ctx, tx, ti.Token); err != nil {
			return fmt.Errorf("save token: %w", err)
		}
		if err := recordUsage(ctx, tx, ti.Usage); err != nil {
			return fmt.Errorf("record usage: %w", err)
		}
		return nil
	})
	if err != nil {
		return fail(ctx, "issue token", err)
	}
	return nil
}
