package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Collect deletes expired jtis, auth sessions, grants and access tokens, and
// CGNAT port blocks released more than PortBlockRetention before now.
// Network sessions are left to ExpireSessions. Each DELETE removes at most
// CollectBatch rows and commits on its own, so collection never holds many
// row locks or a long transaction; several nodes collecting at once skip
// each other's rows.
func (s *Store) Collect(ctx context.Context, now time.Time) (int, error) {
	released := now.Add(-s.retention)
	total := 0
	for _, q := range []struct {
		table, key, where string
		arg               any
	}{
		{"jtis", "issuer, jti", "expires_at <= $1", now},
		{"auth_sessions", "id", "expires_at <= $1", now},
		{"grants", "id", "expires_at <= $1", now},
		{"tokens", "hash", "(expires_at IS NULL OR expires_at <= $1)", now},
		{"port_blocks", "id", "end_at < $1", released},
		{"api_usage_daily", "client_id, day", "day < $1::date", usageDay(now.AddDate(0, 0, -1))},
	} {
		n, err := s.batched(ctx, fmt.Sprintf(`DELETE FROM %[1]s WHERE (%[2]s) IN (
	SELECT %[2]s FROM %[1]s WHERE %[3]s LIMIT $2 FOR UPDATE SKIP LOCKED)`, q.table, q.key, q.where), q.arg)
		total += n
		if err != nil {
			return total, fmt.Errorf("postgres: collect %s: %w", q.table, err)
		}
	}
	return total, nil
}

// batched runs a DELETE taking ($1 = arg, $2 = batch size) until a run
// removes fewer rows than a batch, and returns how many rows it removed.
func (s *Store) batched(ctx context.Context, sql string, arg any) (int, error) {
	total := 0
	for {
		octx, cancel := s.op(ctx)
		n, err := s.exec(octx, sql, arg, s.batch)
		if err != nil {
			err = classify(octx, err)
		}
		cancel()
		total += int(n)
		if err != nil {
			return total, err
		}
		if n < int64(s.batch) {
			return total, nil
		}
	}
}

// usageDay is a UTC date as PostgreSQL reads a date: YYYY-MM-DD.
func usageDay(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// TakeDailyQuota counts one API call of clientID on day's UTC date if fewer
// than limit were counted, in one statement: concurrent callers on any node
// queue on the row and never count past limit.
func (s *Store) TakeDailyQuota(ctx context.Context, clientID string, day time.Time, limit int64) (bool, error) {
	if limit < 1 {
		return false, errors.New("postgres: take daily quota: limit must be at least 1")
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	n, err := s.exec(ctx, `
INSERT INTO api_usage_daily (client_id, day, calls) VALUES ($1, $2::date, 1)
ON CONFLICT (client_id, day) DO UPDATE SET calls = api_usage_daily.calls + 1
WHERE api_usage_daily.calls < $3`, clientID, usageDay(day), limit)
	if err != nil {
		return false, fail(ctx, "take daily quota", err)
	}
	return n == 1, nil
}
