package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/numbergate/numbergate/internal/nv"
)

// ConsumeJTI records (issuer, jti) until expiresAt in one statement: a new
// pair is inserted, one whose record had expired at now is renewed, and
// one still recorded gives nv.ErrConsumed. Concurrent callers on any node
// queue on the row; exactly one inserts or renews it.
func (s *Store) ConsumeJTI(ctx context.Context, issuer, jti string, expiresAt, now time.Time) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	if err := consumeJTI(ctx, s.pool, issuer, jti, expiresAt, now); err != nil {
		return fail(ctx, "consume jti", err)
	}
	return nil
}

// consumeJTI is ConsumeJTI's statement, on q (the pool or a transaction).
func consumeJTI(ctx context.Context, q querier, issuer, jti string, expiresAt, now time.Time) error {
	tag, err := q.Exec(ctx, `
INSERT INTO jtis (issuer, jti, expires_at) VALUES ($1, $2, $3)
ON CONFLICT (issuer, jti) DO UPDATE SET expires_at = excluded.expires_at
WHERE jtis.expires_at IS NOT NULL AND jtis.expires_at <= $4`,
		issuer, jti, ts(expiresAt), now)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return nv.ErrConsumed
	}
	return nil
}

// SaveAuthSession creates or replaces an authorization session.
func (s *Store) SaveAuthSession(ctx context.Context, a nv.AuthSession) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	_, err := s.exec(ctx, `
INSERT INTO auth_sessions (id, data, expires_at) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at`,
		a.ID, a.Data, ts(a.ExpiresAt))
	if err != nil {
		return fail(ctx, "save auth session", err)
	}
	return nil
}

// AuthSession returns the session with id, or nv.ErrNotFound if there is
// none or it has expired at now.
func (s *Store) AuthSession(ctx context.Context, id string, now time.Time) (nv.AuthSession, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	a := nv.AuthSession{ID: id}
	var expiresAt *time.Time
	err := s.pool.QueryRow(ctx, `
SELECT data, expires_at FROM auth_sessions
WHERE id = $1 AND (expires_at IS NULL OR expires_at > $2)`, id, now).Scan(&a.Data, &expiresAt)
	if err != nil {
		return nv.AuthSession{}, fail(ctx, "auth session", err)
	}
	a.ExpiresAt = fromTS(expiresAt)
	return a, nil
}

// CreateGrant stores a new grant (nv.ErrAlreadyExists if its id or code is
// taken).
func (s *Store) CreateGrant(ctx context.Context, g nv.Grant) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	return s.execOne(ctx, "create grant", nv.ErrAlreadyExists, `
INSERT INTO grants (id, auth_code, code_consumed, revoked, data, expires_at)
VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
		g.ID, nullString(g.AuthCode), g.CodeConsumed, g.Revoked, g.Data, ts(g.ExpiresAt))
}

const grantColumns = "id, auth_code, code_consumed, revoked, data, expires_at"

func scanGrant(row pgx.Row) (nv.Grant, error) {
	var (
		g         nv.Grant
		code      *string
		expiresAt *time.Time
	)
	if err := row.Scan(&g.ID, &code, &g.CodeConsumed, &g.Revoked, &g.Data, &expiresAt); err != nil {
		return nv.Grant{}, err
	}
	if code != nil {
		g.AuthCode = *code
	}
	g.ExpiresAt = fromTS(expiresAt)
	return g, nil
}

// Grant returns the grant with id, revoked or not (nv.ErrNotFound if there
// is none).
func (s *Store) Grant(ctx context.Context, id string) (nv.Grant, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	g, err := scanGrant(s.pool.QueryRow(ctx, "SELECT "+grantColumns+" FROM grants WHERE id = $1", id))
	if err != nil {
		return nv.Grant{}, fail(ctx, "grant", err)
	}
	return g, nil
}

// GrantByAuthCode returns the grant holding code, consumed or not; a
// revoked grant is nv.ErrNotFound.
func (s *Store) GrantByAuthCode(ctx context.Context, code string) (nv.Grant, error) {
	if code == "" {
		return nv.Grant{}, fmt.Errorf("postgres: grant by code: %w", nv.ErrNotFound)
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	g, err := scanGrant(s.pool.QueryRow(ctx,
		"SELECT "+grantColumns+" FROM grants WHERE auth_code = $1 AND NOT revoked", code))
	if err != nil {
		return nv.Grant{}, fail(ctx, "grant by code", err)
	}
	return g, nil
}

// RedeemGrant marks the grant's code consumed and stores data, in one
// statement that only one caller on any node can win. It returns
// nv.ErrConsumed if the code was already consumed, nv.ErrNotFound if the
// grant is gone, revoked, or its ExpiresAt is not after now.
func (s *Store) RedeemGrant(ctx context.Context, id string, data []byte, now time.Time) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	if err := redeemGrant(ctx, s.pool, id, data, now); err != nil {
		return fail(ctx, "redeem grant", err)
	}
	return nil
}

// redeemGrant is RedeemGrant's statement, on q (the pool or a
// transaction). Its UPDATE locks the grant row until q's transaction ends.
func redeemGrant(ctx context.Context, q querier, id string, data []byte, now time.Time) error {
	tag, err := q.Exec(ctx, `
UPDATE grants SET code_consumed = true, data = $2
WHERE id = $1 AND NOT code_consumed AND NOT revoked AND (expires_at IS NULL OR expires_at > $3)`,
		id, data, now)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	// Lost: tell why. The outcome was decided above; this only explains it.
	var (
		consumed, revoked bool
		expiresAt         *time.Time
	)
	err = q.QueryRow(ctx, "SELECT code_consumed, revoked, expires_at FROM grants WHERE id = $1", id).
		Scan(&consumed, &revoked, &expiresAt)
	switch {
	case err != nil:
		return err
	case revoked:
		return fmt.Errorf("revoked: %w", nv.ErrNotFound)
	case consumed:
		return nv.ErrConsumed
	default:
		return fmt.Errorf("expired: %w", nv.ErrNotFound)
	}
}

// RevokeGrant marks the grant revoked and deletes its access tokens, in one
// transaction. The UPDATE waits for any SaveToken holding the grant row
// FOR SHARE, so the DELETE that follows (a new snapshot) sees its token;
// a later SaveToken sees the grant revoked and inserts nothing.
func (s *Store) RevokeGrant(ctx context.Context, id string) error {
	if id == "" {
		return nil // tokens without a grant (sandbox) are not revoked this way
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "UPDATE grants SET revoked = true WHERE id = $1", id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DELETE FROM tokens WHERE grant_id = $1", id)
		return err
	})
	if err != nil {
		return fail(ctx, "revoke grant", err)
	}
	return nil
}

// nullString stores "" as NULL, so that many rows may have none.
func nullString(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}
