package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

// ConsumeJTI records (issuer, jti) until expiresAt in one statement: a new
// pair is inserted, one whose record has expired at now is replaced, and
// one still recorded gives nv.ErrConsumed.
func (s *Store) ConsumeJTI(ctx context.Context, issuer, jti string, expiresAt, now time.Time) error {
	if err := s.write(ctx, func(tx *wtx) error { return consumeJTI(tx, issuer, jti, expiresAt, now) }); err != nil {
		return fmt.Errorf("sqlite: consume jti: %w", err)
	}
	return nil
}

// consumeJTI is ConsumeJTI's statement, inside an op. A jti still
// recorded is nv.ErrConsumed marked noEffect: the statement changed no row
// (jtis has no trigger).
func consumeJTI(tx *wtx, issuer, jti string, expiresAt, now time.Time) error {
	n, err := tx.exec(`
INSERT INTO jtis (issuer, jti, expires_at) VALUES (?, ?, ?)
ON CONFLICT (issuer, jti) DO UPDATE SET expires_at = excluded.expires_at
WHERE jtis.expires_at <> 0 AND jtis.expires_at <= ?`,
		issuer, jti, unixNano(expiresAt), unixNano(now))
	if err != nil {
		return err
	}
	if n == 0 {
		return noEffect(nv.ErrConsumed)
	}
	return nil
}

// SaveAuthSession creates or replaces an authorization session.
func (s *Store) SaveAuthSession(ctx context.Context, a nv.AuthSession) error {
	_, err := s.exec(ctx, `
INSERT INTO auth_sessions (id, data, expires_at) VALUES (?, ?, ?)
ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at`,
		a.ID, a.Data, unixNano(a.ExpiresAt))
	if err != nil {
		return fmt.Errorf("sqlite: save auth session: %w", err)
	}
	return nil
}

// AuthSession returns the session with id, or nv.ErrNotFound if there is
// none or it has expired at now.
func (s *Store) AuthSession(ctx context.Context, id string, now time.Time) (nv.AuthSession, error) {
	var (
		a         = nv.AuthSession{ID: id}
		expiresAt int64
	)
	err := s.queryRow(ctx, `
SELECT data, expires_at FROM auth_sessions
WHERE id = ? AND (expires_at = 0 OR expires_at > ?)`, id, unixNano(now)).Scan(&a.Data, &expiresAt)
	if err != nil {
		return nv.AuthSession{}, fmt.Errorf("sqlite: auth session: %w", notFound(err))
	}
	a.ExpiresAt = fromUnixNano(expiresAt)
	return a, nil
}

// CreateGrant stores a new grant (nv.ErrAlreadyExists if its id or code is
// taken).
func (s *Store) CreateGrant(ctx context.Context, g nv.Grant) error {
	err := s.writeThen(ctx, func(tx *wtx) error {
		n, err := tx.exec(`
INSERT INTO grants (id, auth_code, code_consumed, revoked, data, expires_at)
VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			g.ID, nullString(g.AuthCode), g.CodeConsumed, g.Revoked, g.Data, unixNano(g.ExpiresAt))
		if err == nil && n == 0 {
			err = noEffect(nv.ErrAlreadyExists) // grants has no trigger: nothing written
		}
		return err
	}, func() { s.grants.add(g, time.Now()) })
	if err != nil {
		return fmt.Errorf("sqlite: create grant: %w", err)
	}
	return nil
}

const grantColumns = "id, auth_code, code_consumed, revoked, data, expires_at"

func scanGrant(row *sql.Row) (nv.Grant, error) {
	var (
		g         nv.Grant
		code      sql.NullString
		expiresAt int64
	)
	if err := row.Scan(&g.ID, &code, &g.CodeConsumed, &g.Revoked, &g.Data, &expiresAt); err != nil {
		return nv.Grant{}, notFound(err)
	}
	g.AuthCode = code.String
	g.ExpiresAt = fromUnixNano(expiresAt)
	return g, nil
}

// Grant returns the grant with id, revoked or not (nv.ErrNotFound if there
// is none).
func (s *Store) Grant(ctx context.Context, id string) (nv.Grant, error) {
	g, err := scanGrant(s.queryRow(ctx, "SELECT "+grantColumns+" FROM grants WHERE id = ?", id))
	if err != nil {
		return nv.Grant{}, fmt.Errorf("sqlite: grant: %w", err)
	}
	return g, nil
}

// GrantByAuthCode returns the grant holding code, consumed or not; a
// revoked grant is nv.ErrNotFound.
func (s *Store) GrantByAuthCode(ctx context.Context, code string) (nv.Grant, error) {
	if code == "" {
		return nv.Grant{}, fmt.Errorf("sqlite: grant by code: %w", nv.ErrNotFound)
	}
	if g, ok := s.grants.get(code, time.Now()); ok {
		return g, nil
	}
	g, err := scanGrant(s.queryRow(ctx,
		"SELECT "+grantColumns+" FROM grants WHERE auth_code = ? AND revoked = 0", code))
	if err != nil {
		return nv.Grant{}, fmt.Errorf("sqlite: grant by code: %w", err)
	}
	return g, nil
}

// RedeemGrant marks the grant's code consumed and stores data, in one
// statement that only one caller can win. A grant whose ExpiresAt is not
// after now is nv.ErrNotFound.
func (s *Store) RedeemGrant(ctx context.Context, id string, data []byte, now time.Time) error {
	err := s.writeThen(ctx, func(tx *wtx) error { return redeemGrant(tx, id, data, now) },
		func() { s.grants.drop(id) })
	if err != nil {
		return fmt.Errorf("sqlite: redeem grant: %w", err)
	}
	return nil
}

// redeemGrant is RedeemGrant's statement, inside an op. A lost redemption
// is marked noEffect: its UPDATE changed no row (grants has no trigger) and
// the SELECT explaining it reads only; an error of that SELECT is not
// marked.
func redeemGrant(tx *wtx, id string, data []byte, now time.Time) error {
	n, err := tx.exec(`
UPDATE grants SET code_consumed = 1, data = ?
WHERE id = ? AND code_consumed = 0 AND revoked = 0 AND (expires_at = 0 OR expires_at > ?)`,
		data, id, unixNano(now))
	if err != nil || n == 1 {
		return err
	}
	// Lost: tell why. The outcome was decided above; this only explains it.
	var (
		consumed, revoked bool
		expiresAt         int64
	)
	err = tx.queryRow("SELECT code_consumed, revoked, expires_at FROM grants WHERE id = ?", id).
		Scan(&consumed, &revoked, &expiresAt)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return noEffect(nv.ErrNotFound)
	case err != nil:
		return err
	case revoked:
		return noEffect(fmt.Errorf("revoked: %w", nv.ErrNotFound))
	case expiresAt != 0 && expiresAt <= unixNano(now):
		return noEffect(fmt.Errorf("expired: %w", nv.ErrNotFound))
	default:
		return noEffect(nv.ErrConsumed)
	}
}

// RevokeGrant marks the grant revoked and deletes its access tokens, in one
// transaction.
func (s *Store) RevokeGrant(ctx context.Context, id string) error {
	if id == "" {
		return nil // tokens without a grant (sandbox) are not revoked this way
	}
	err := s.writeThen(ctx, func(tx *wtx) error {
		if _, err := tx.exec("UPDATE grants SET revoked = 1 WHERE id = ?", id); err != nil {
			return err
		}
		_, err := tx.exec("DELETE FROM tokens WHERE grant_id = ?", id)
		return err
	}, func() {
		s.grants.drop(id)
		s.tokc.clear() // which of the remembered tokens were the grant's is not known here
	})
	if err != nil {
		return fmt.Errorf("sqlite: revoke grant: %w", err)
	}
	return nil
}

// nullString stores "" as NULL, so that many rows may have none.
func nullString(v string) sql.NullString { return sql.NullString{String: v, Valid: v != ""} }
