package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/numbergate/numbergate/internal/nv"
)

// SaveToken stores an access token by hash (nv.ErrAlreadyExists if the hash
// is taken). A token with a GrantID is inserted from a SELECT that locks
// the grant row FOR SHARE and requires it not revoked: with no such grant,
// nothing is stored and the answer is nv.ErrNotFound.
func (s *Store) SaveToken(ctx context.Context, t nv.AccessToken) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	if err := saveToken(ctx, s.pool, t); err != nil {
		return fail(ctx, "save token", err)
	}
	return nil
}

// saveToken is SaveToken's statement, on q (the pool or a transaction).
func saveToken(ctx context.Context, q querier, t nv.AccessToken) error {
	args := []any{t.Hash, t.GrantID, t.ClientID, string(t.MSISDN), nonNil(t.Scopes), t.Purpose,
		string(t.AuthMethod), t.Source, ts(t.IssuedAt), ts(t.ExpiresAt)}
	const insert = `INSERT INTO tokens (hash, grant_id, client_id, msisdn, scopes, purpose, auth_method, source, issued_at, expires_at) `
	var (
		tag pgconn.CommandTag
		err error
	)
	if t.GrantID == "" {
		tag, err = q.Exec(ctx, insert+`VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`, args...)
	} else {
		tag, err = q.Exec(ctx, insert+`
SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 FROM grants WHERE id = $2 AND NOT revoked FOR SHARE
ON CONFLICT DO NOTHING`, args...)
	}
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var one int
	err = q.QueryRow(ctx, "SELECT 1 FROM tokens WHERE hash = $1", t.Hash).Scan(&one)
	switch {
	case err == nil:
		return nv.ErrAlreadyExists
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("grant gone or revoked: %w", nv.ErrNotFound)
	default:
		return err
	}
}

const tokenColumns = "hash, grant_id, client_id, msisdn, scopes, purpose, auth_method, source, issued_at, expires_at"

func scanToken(row pgx.Row) (nv.AccessToken, error) {
	var (
		t                   nv.AccessToken
		msisdn, am          string
		issuedAt, expiresAt *time.Time
	)
	err := row.Scan(&t.Hash, &t.GrantID, &t.ClientID, &msisdn, &t.Scopes, &t.Purpose, &am, &t.Source, &issuedAt, &expiresAt)
	if err != nil {
		return nv.AccessToken{}, err
	}
	t.MSISDN = nv.PhoneNumber(msisdn)
	t.AuthMethod = nv.AuthMethod(am)
	t.IssuedAt = fromTS(issuedAt)
	t.ExpiresAt = fromTS(expiresAt)
	return t, nil
}

// ConsumeToken marks the token used and returns it, in one statement that
// only one caller on any node can win. An unknown (or revoked) hash is
// nv.ErrNotFound, a used one nv.ErrConsumed; a token whose ExpiresAt is not
// after now is consumed all the same and returned with nv.ErrExpired.
func (s *Store) ConsumeToken(ctx context.Context, hash string, now time.Time) (nv.AccessToken, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	t, err := scanToken(s.pool.QueryRow(ctx,
		"UPDATE tokens SET used_at = $2 WHERE hash = $1 AND used_at IS NULL RETURNING "+tokenColumns, hash, now))
	if errors.Is(err, pgx.ErrNoRows) {
		// Lost: tell why. The outcome was decided above; this only explains it.
		var one int
		err = s.pool.QueryRow(ctx, "SELECT 1 FROM tokens WHERE hash = $1", hash).Scan(&one)
		if err == nil {
			err = nv.ErrConsumed
		}
		return nv.AccessToken{}, fail(ctx, "consume token", err)
	}
	if err != nil {
		return nv.AccessToken{}, fail(ctx, "consume token", err)
	}
	if !t.ExpiresAt.After(now) {
		return t, fmt.Errorf("postgres: consume token: %w", nv.ErrExpired)
	}
	return t, nil
}

// Token returns a token by hash without consuming it (nv.ErrNotFound if
// there is none).
func (s *Store) Token(ctx context.Context, hash string) (nv.AccessToken, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	t, err := scanToken(s.pool.QueryRow(ctx, "SELECT "+tokenColumns+" FROM tokens WHERE hash = $1", hash))
	if err != nil {
		return nv.AccessToken{}, fail(ctx, "token", err)
	}
	return t, nil
}

// nonNil stores a nil list as an empty array (the columns are NOT NULL).
func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
