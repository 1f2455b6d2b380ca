package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/numbergate/numbergate/internal/nv"
)

// Network-session writes (RADIUS Start, Interim-Update, Stop) arrive by the
// thousand per second, each a one-row statement whose caller answers the
// gateway only after the commit. Sent one by one, each costs a round trip
// and a commit of its own. A few writers instead take whatever writes are
// waiting, run them in one transaction sent as one pipelined batch, and
// answer every caller after that one commit: the same durability (nothing
// is answered before it is committed), far fewer round trips and commits.
//
// A statement that fails rolls its batch back; the batch's writes are then
// run one by one, so one write's failure is that write's alone. Within a
// batch, writes are ordered by prefix (keeping their order for the same
// prefix), so two batches lock rows in the same order and cannot deadlock.
const (
	sessionWriters  = 4
	maxSessionBatch = 256
)

var errStoreClosed = errors.New("postgres: store closed")

// write is one queued statement and where its outcome goes.
type write struct {
	key  string // the row it touches, for lock ordering
	sql  string
	args []any
	done chan writeResult
}

type writeResult struct {
	rows int64
	err  error
}

// writer runs queued writes in batches.
type writer struct {
	s     *Store
	queue chan *write
	quit  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

func newWriter(s *Store) *writer {
	w := &writer{s: s, queue: make(chan *write, 4*maxSessionBatch), quit: make(chan struct{})}
	for range sessionWriters {
		w.wg.Go(w.loop)
	}
	return w
}

// close stops the writers; writes still queued get an error. Closing
// twice is harmless.
func (w *writer) close() {
	w.once.Do(func() { close(w.quit) })
	w.wg.Wait()
	for {
		select {
		case op := <-w.queue:
			op.done <- writeResult{err: errStoreClosed}
		default:
			return
		}
	}
}

// exec queues one statement and waits for its commit. If ctx ends first
// the caller gets ctx's error, but the statement may still be committed
// (as with any write whose answer was lost).
func (w *writer) exec(ctx context.Context, key, sql string, args ...any) (int64, error) {
	op := &write{key: key, sql: sql, args: args, done: make(chan writeResult, 1)}
	select {
	case <-w.quit:
		return 0, errStoreClosed
	default:
	}
	select {
	case w.queue <- op:
	case <-w.quit:
		return 0, errStoreClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case r := <-op.done:
		return r.rows, r.err
	case <-w.quit:
		// Closed meanwhile: the write may or may not have been committed.
		select {
		case r := <-op.done:
			return r.rows, r.err
		case <-time.After(w.s.opTimeout):
			return 0, errStoreClosed
		}
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (w *writer) loop() {
	batch := make([]*write, 0, maxSessionBatch)
	for {
		select {
		case <-w.quit:
			return
		case op := <-w.queue:
			batch = append(batch[:0], op)
		}
	fill:
		for len(batch) < maxSessionBatch {
			select {
			case op := <-w.queue:
				batch = append(batch, op)
			default:
				break fill
			}
		}
		w.run(batch)
	}
}

// run commits batch in one transaction, or each write alone if the batch
// fails on a statement.
func (w *writer) run(batch []*write) {
	ctx, cancel := w.s.op(context.Background())
	defer cancel()
	if len(batch) == 1 {
		n, err := w.s.exec(ctx, batch[0].sql, batch[0].args...)
		batch[0].done <- writeResult{n, classify(ctx, err)}
		return
	}
	slices.SortStableFunc(batch, func(a, b *write) int { return strings.Compare(a.key, b.key) })
	rows := make([]int64, len(batch))
	stmtFailed := false
	err := pgx.BeginFunc(ctx, w.s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, op := range batch {
			b.Queue(op.sql, op.args...)
		}
		br := tx.SendBatch(ctx, b)
		for i := range batch {
			tag, err := br.Exec()
			if err != nil {
				br.Close()
				var pe interface{ SQLState() string }
				stmtFailed = errors.As(err, &pe) && !unavailableCode(pe.SQLState())
				return err
			}
			rows[i] = tag.RowsAffected()
		}
		return br.Close()
	})
	switch {
	case err == nil:
		for i, op := range batch {
			op.done <- writeResult{rows: rows[i]}
		}
	case stmtFailed:
		// One write is wrong, not the database: run them one by one.
		for _, op := range batch {
			octx, ocancel := w.s.op(context.Background())
			n, err := w.s.exec(octx, op.sql, op.args...)
			op.done <- writeResult{n, classify(octx, err)}
			ocancel()
		}
	default:
		err = classify(ctx, err)
		if !errors.Is(err, nv.ErrUnavailable) {
			err = fmt.Errorf("batch of %d writes: %w", len(batch), err)
		}
		for _, op := range batch {
			op.done <- writeResult{err: err}
		}
	}
}
