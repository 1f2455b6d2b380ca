package sqlite

import (
	"context"
	"errors"
	"fmt"
	"time"
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
