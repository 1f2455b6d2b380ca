package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/numbergate/numbergate/internal/nv"
)

// RecordUsage stores one usage record in one INSERT.
func (s *Store) RecordUsage(ctx context.Context, r nv.UsageRecord) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	if err := recordUsage(ctx, s.pool, r); err != nil {
		return fail(ctx, "record usage", err)
	}
	return nil
}

// recordUsage is RecordUsage's statement, on q (the pool or a transaction).
func recordUsage(ctx context.Context, q querier, r nv.UsageRecord) error {
	_, err := q.Exec(ctx, `INSERT INTO usage_records (at, client_id, event, operation, purpose, scopes, result, source)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, r.At, r.ClientID, r.Event, r.Operation, r.Purpose, nonNil(r.Scopes), r.Result, r.Source)
	return err
}

// UsageRecords returns the records with from <= At < to, oldest first.
func (s *Store) UsageRecords(ctx context.Context, from, to time.Time) ([]nv.UsageRecord, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	return queryAll(ctx, s, "usage records", func(row pgx.CollectableRow) (nv.UsageRecord, error) {
		var r nv.UsageRecord
		err := row.Scan(&r.At, &r.ClientID, &r.Event, &r.Operation, &r.Purpose, &r.Scopes, &r.Result, &r.Source)
		r.At = r.At.UTC()
		return r, err
	}, `SELECT at, client_id, event, operation, purpose, scopes, result, source
FROM usage_records WHERE at >= $1 AND at < $2 ORDER BY at, id`, from, to)
}

// ExpireUsage deletes the records older than before, in batches of
// CollectBatch rows (each its own short statement), and returns how many.
func (s *Store) ExpireUsage(ctx context.Context, before time.Time) (int, error) {
	n, err := s.batched(ctx, `DELETE FROM usage_records WHERE id IN (
	SELECT id FROM usage_records WHERE at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, before)
	if err != nil {
		return n, fmt.Errorf("postgres: expire usage: %w", err)
	}
	return n, nil
}
