package sqlite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

// usageDay is how a UTC date is stored in api_usage_daily: YYYY-MM-DD.
func usageDay(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// TakeDailyQuota counts one API call of clientID on day's UTC date if fewer
// than limit were counted, in one statement.
func (s *Store) TakeDailyQuota(ctx context.Context, clientID string, day time.Time, limit int64) (bool, error) {
	if limit < 1 {
		return false, errors.New("sqlite: take daily quota: limit must be at least 1")
	}
	n, err := s.exec(ctx, `
INSERT INTO api_usage_daily (client_id, day, calls) VALUES (?, ?, 1)
ON CONFLICT (client_id, day) DO UPDATE SET calls = calls + 1 WHERE calls < ?`,
		clientID, usageDay(day), limit)
	if err != nil {
		return false, fmt.Errorf("sqlite: take daily quota: %w", err)
	}
	return n == 1, nil
}

// RecordUsage stores one usage record in one INSERT.
func (s *Store) RecordUsage(ctx context.Context, r nv.UsageRecord) error {
	if err := s.write(ctx, func(tx *wtx) error { return recordUsage(tx, r) }); err != nil {
		return fmt.Errorf("sqlite: record usage: %w", err)
	}
	return nil
}

// recordUsage is RecordUsage's statement, inside an op.
func recordUsage(tx *wtx, r nv.UsageRecord) error {
	_, err := tx.exec(`INSERT INTO usage_records (at, client_id, event, operation, purpose, scopes, result, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		unixNano(r.At), r.ClientID, r.Event, r.Operation, r.Purpose, strings.Join(r.Scopes, " "), r.Result, r.Source)
	return err
}

// UsageRecords returns the records with from <= At < to, oldest first.
func (s *Store) UsageRecords(ctx context.Context, from, to time.Time) ([]nv.UsageRecord, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT at, client_id, event, operation, purpose, scopes, result, source
FROM usage_records WHERE at >= ? AND at < ? ORDER BY at, id`, unixNano(from), unixNano(to))
	if err != nil {
		return nil, fmt.Errorf("sqlite: usage records: %w", err)
	}
	defer rows.Close()
	var out []nv.UsageRecord
	for rows.Next() {
		var (
			r      nv.UsageRecord
			at     int64
			scopes string
		)
		if err := rows.Scan(&at, &r.ClientID, &r.Event, &r.Operation, &r.Purpose, &scopes, &r.Result, &r.Source); err != nil {
			return nil, fmt.Errorf("sqlite: usage records: %w", err)
		}
		r.At = fromUnixNano(at)
		r.Scopes = nv.SplitScope(scopes)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: usage records: %w", err)
	}
	return out, nil
}

// ExpireUsage deletes the records older than before.
func (s *Store) ExpireUsage(ctx context.Context, before time.Time) (int, error) {
	n, err := s.exec(ctx, "DELETE FROM usage_records WHERE at < ?", unixNano(before))
	if err != nil {
		return 0, fmt.Errorf("sqlite: expire usage: %w", err)
	}
	return int(n), nil
}
