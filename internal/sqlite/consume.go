package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/numbergate/numbergate/internal/nv"
)

// consumeQuery marks a token used and returns it (its hash aside: the
// caller knows it). Only one caller can win it.
const consumeQuery = "UPDATE tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL RETURNING " +
	"grant_id, client_id, msisdn, scopes, purpose, auth_method, source, issued_at, expires_at"

// ConsumeTokenFor consumes the token and stores the usage record that
// record returns for it in one writer op: one transaction, one commit wait.
// The record is stored only when this call consumed the token (record is
// then called with nil or nv.ErrExpired); a lost race or an unknown hash
// stores nothing. A nil record stores nothing (ConsumeToken).
func (s *Store) ConsumeTokenFor(ctx context.Context, hash string, now time.Time, record nv.UsageRecorder) (nv.AccessToken, error) {
	var t nv.AccessToken
	err := s.write(ctx, func(tx *wtx) error {
		// The writer may run an op more than once: only assign outputs.
		var err error
		t, err = scanConsumed(tx.queryRow(consumeQuery, unixNano(now), hash), hash)
		if errors.Is(err, sql.ErrNoRows) {
			// Lost: tell why. The outcome was decided above; this only
			// explains it. The UPDATE changed no row (tokens has no
			// trigger) and this SELECT reads only: nothing to undo.
			var one int
			err = tx.queryRow("SELECT 1 FROM tokens WHERE hash = ?", hash).Scan(&one)
			switch {
			case err == nil:
				return noEffect(nv.ErrConsumed)
			case errors.Is(err, sql.ErrNoRows):
				return noEffect(nv.ErrNotFound)
			default:
				return err
			}
		}
		if err != nil || record == nil {
			return err
		}
		r, ok := record(t, expired(t, now))
		if !ok {
			return nil
		}
		if err := recordUsage(tx, r); err != nil {
			return fmt.Errorf("usage record: %w", err)
		}
		return nil
	})
	if err != nil {
		return nv.AccessToken{}, fmt.Errorf("sqlite: consume token: %w", err)
	}
	if err := expired(t, now); err != nil {
		return t, fmt.Errorf("sqlite: consume token: %w", err)
	}
	return t, nil
}

// expired is nv.ErrExpired for a token whose ExpiresAt is not after now.
func expired(t nv.AccessToken, now time.Time) error {
	if !t.ExpiresAt.After(now) {
		return nv.ErrExpired
	}
	return nil
}

// scanConsumed reads consumeQuery's row.
func scanConsumed(row *sql.Row, hash string) (nv.AccessToken, error) {
	var (
		t                   nv.AccessToken
		msisdn, scopes, am  string
		issuedAt, expiresAt int64
	)
	err := row.Scan(&t.GrantID, &t.ClientID, &msisdn, &scopes, &t.Purpose, &am, &t.Source, &issuedAt, &expiresAt)
	if err != nil {
		return nv.AccessToken{}, err
	}
	if t.Scopes, err = decodeScopes(scopes); err != nil {
		return nv.AccessToken{}, err
	}
	t.Hash = hash
	t.MSISDN = nv.PhoneNumber(msisdn)
	t.AuthMethod = nv.AuthMethod(am)
	t.IssuedAt = fromUnixNano(issuedAt)
	t.ExpiresAt = fromUnixNano(expiresAt)
	return t, nil
}

// decodeScopes reads a token's scopes column, a JSON array of strings as
// jsonList writes it. The common form (["a","b"]: no spaces, no escapes) is
// cut up in place, into one slice of substrings; anything else goes through
// encoding/json.
func decodeScopes(s string) ([]string, error) {
	if l, ok := plainList(s); ok {
		return l, nil
	}
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, err
	}
	return l, nil
}

// plainList parses s if it is ["...","..."] with nothing to unescape;
// ok is false for any other input.
func plainList(s string) ([]string, bool) {
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' || !utf8.ValidString(s) {
		return nil, false
	}
	body := s[1 : len(s)-1]
	if body == "" {
		return []string{}, true
	}
	l := make([]string, 0, strings.Count(body, ",")+1)
	for body != "" {
		if len(body) < 2 || body[0] != '"' {
			return nil, false
		}
		end := strings.IndexByte(body[1:], '"') + 1
		if end == 0 {
			return nil, false
		}
		v := body[1:end]
		for i := 0; i < len(v); i++ {
			if v[i] < 0x20 || v[i] == '\\' {
				return nil, false
			}
		}
		l = append(l, v)
		body = body[end+1:]
		if body == "" {
			break
		}
		if body[0] != ',' || len(body) == 1 {
			return nil, false
		}
		body = body[1:]
	}
	return l, true
}
