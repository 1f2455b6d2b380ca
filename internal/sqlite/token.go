package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

// SaveToken stores an access token by hash (nv.ErrAlreadyExists if the
// hash is taken). A token with a GrantID is inserted by one statement that
// also checks that its grant exists and is not revoked (nv.ErrNotFound
// otherwise): writes are serialized by the one writer (each op of a batch
// runs alone, in order), so a RevokeGrant runs wholly before (the insert
// finds the grant revoked) or wholly after (its DELETE removes the token).
func (s *Store) SaveToken(ctx context.Context, t nv.AccessToken) error {
	err := s.writeThen(ctx, func(tx *wtx) error { return saveToken(tx, t) },
		func() { s.tokc.add(t.Hash, t.ClientID, t.ExpiresAt, time.Now()) })
	if err != nil {
		return fmt.Errorf("sqlite: save token: %w", err)
	}
	return nil
}

// saveToken is SaveToken's statement, inside an op. A refused token (hash
// taken, grant gone) is marked noEffect: the INSERT changed no row (tokens
// has no trigger) and the SELECT explaining it reads only.
func saveToken(tx *wtx, t nv.AccessToken) error {
	args := []any{t.Hash, t.GrantID, t.ClientID, string(t.MSISDN), jsonList(t.Scopes), t.Purpose,
		string(t.AuthMethod), t.Source, unixNano(t.IssuedAt), unixNano(t.ExpiresAt)}
	query := `
INSERT INTO tokens (hash, grant_id, client_id, msisdn, scopes, purpose, auth_method, source, issued_at, expires_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	if t.GrantID != "" {
		query = `
INSERT INTO tokens (hash, grant_id, client_id, msisdn, scopes, purpose, auth_method, source, issued_at, expires_at)
SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
WHERE EXISTS (SELECT 1 FROM grants WHERE id = ? AND revoked = 0) ON CONFLICT DO NOTHING`
		args = append(args, t.GrantID)
	}
	n, err := tx.exec(query, args...)
	if err != nil || n == 1 {
		return err
	}
	// Nothing inserted: tell why. The outcome was decided above.
	var one int
	err = tx.queryRow("SELECT 1 FROM tokens WHERE hash = ?", t.Hash).Scan(&one)
	switch {
	case err == nil:
		return noEffect(nv.ErrAlreadyExists)
	case errors.Is(err, sql.ErrNoRows):
		return noEffect(fmt.Errorf("grant %q gone or revoked: %w", t.GrantID, nv.ErrNotFound))
	default:
		return err
	}
}

const tokenColumns = "hash, grant_id, client_id, msisdn, scopes, purpose, auth_method, source, issued_at, expires_at"

func scanToken(row *sql.Row) (nv.AccessToken, error) {
	var (
		t                   nv.AccessToken
		msisdn, scopes, am  string
		issuedAt, expiresAt int64
	)
	err := row.Scan(&t.Hash, &t.GrantID, &t.ClientID, &msisdn, &scopes, &t.Purpose, &am, &t.Source, &issuedAt, &expiresAt)
	if err != nil {
		return nv.AccessToken{}, err
	}
	if t.Scopes, err = decodeScopes(scopes); err != nil {
		return nv.AccessToken{}, err
	}
	t.MSISDN = nv.PhoneNumber(msisdn)
	t.AuthMethod = nv.AuthMethod(am)
	t.IssuedAt = fromUnixNano(issuedAt)
	t.ExpiresAt = fromUnixNano(expiresAt)
	return t, nil
}

// ConsumeToken marks the token used and returns it, in one statement that
// only one caller can win. An unknown (or revoked) hash is nv.ErrNotFound,
// a used one nv.ErrConsumed; a token whose ExpiresAt is not after now is
// consumed all the same and returned with nv.ErrExpired.
func (s *Store) ConsumeToken(ctx context.Context, hash string, now time.Time) (nv.AccessToken, error) {
	return s.ConsumeTokenFor(ctx, hash, now, nil)
}

// Token returns a token by hash without consuming it (nv.ErrNotFound if
// there is none).
func (s *Store) Token(ctx context.Context, hash string) (nv.AccessToken, error) {
	t, err := scanToken(s.queryRow(ctx, "SELECT "+tokenColumns+" FROM tokens WHERE hash = ?", hash))
	if err != nil {
		return nv.AccessToken{}, fmt.Errorf("sqlite: token: %w", notFound(err))
	}
	return t, nil
}
