package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/numbergate/numbergate/internal/nv"
)

// ConsumeTokenFor consumes the token and stores the usage record that
// record returns for it in one transaction: the UPDATE that only one caller
// on any node can win, then the INSERT of the record, committed together.
// A lost race or an unknown hash stores nothing (record is not called); a
// failed INSERT rolls the consumption back. A nil record is ConsumeToken.
func (s *Store) ConsumeTokenFor(ctx context.Context, hash string, now time.Time, record nv.UsageRecorder) (nv.AccessToken, error) {
	if record == nil {
		return s.ConsumeToken(ctx, hash, now)
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	var t nv.AccessToken
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		t, err = scanToken(tx.QueryRow(ctx,
			"UPDATE tokens SET used_at = $2 WHERE hash = $1 AND used_at IS NULL RETURNING "+tokenColumns, hash, now))
		if errors.Is(err, pgx.ErrNoRows) {
			// Lost: tell why. The outcome was decided above; this only explains it.
			var one int
			err = tx.QueryRow(ctx, "SELECT 1 FROM tokens WHERE hash = $1", hash).Scan(&one)
			if err == nil {
				err = nv.ErrConsumed
			}
			return err
		}
		if err != nil {
			return err
		}
		var expired error
		if !t.ExpiresAt.After(now) {
			expired = nv.ErrExpired
		}
		r, ok := record(t, expired)
		if !ok {
			return nil
		}
		_, err = tx.Exec(ctx, `INSERT INTO usage_records (at, client_id, event, operation, purpose, scopes, result, source)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, r.At, r.ClientID, r.Event, r.Operation, r.Purpose, nonNil(r.Scopes), r.Result, r.Source)
		return err
	})
	if err != nil {
		return nv.AccessToken{}, fail(ctx, "consume token", err)
	}
	if !t.ExpiresAt.After(now) {
		return t, fmt.Errorf("postgres: consume token: %w", nv.ErrExpired)
	}
	return t, nil
}
