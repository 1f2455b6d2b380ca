package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

// Group commit.
//
// Every write of the store is an op queued to one writer goroutine, which
// owns the one write connection. The writer takes every op waiting (up to
// maxBatch), runs them in one transaction (BEGIN IMMEDIATE) and COMMITs
// once: with synchronous=FULL that is one WAL sync for the whole batch.
// Only then does it answer the callers, so no write is acknowledged before
// it is durable.
//
// An op that fails (a lost single-use race, a constraint, a refused input,
// a panic) fails alone; its batch-mates commit. The writer first runs a
// batch optimistically, with no savepoint: most batches have no failure,
// and a savepoint per op (SAVEPOINT, RELEASE, and the statement journal
// SQLite keeps for it) was a seventh of the writer's CPU under RADIUS load. If an op fails,
// the whole transaction is rolled back and the batch runs again, this time
// each op inside its own SAVEPOINT, so that the failing op is rolled back
// to its savepoint alone (WriteStats.Reruns counts these batches). A batch
// of one failing op needs no second run: the rollback undid exactly that
// op. If the transaction itself is lost (COMMIT fails, or SQLite rolled it
// back after an I/O error or a full disk, which shows as a ROLLBACK or
// ROLLBACK TO that fails), every op of the batch fails with that error
// (wrapping nv.ErrUnavailable) and nothing of the batch is visible.
//
// An op that fails before it changed anything (a replayed token or jti, a
// lost redemption race: its first statement's conditional UPDATE or INSERT
// changed no row and raised no error) returns its error marked with
// noEffect. The writer answers that op with its error and carries on with
// the batch on the same run: there is nothing of it to roll back, so a
// stream of replayed credentials costs no re-run. Only an op that may have
// written before failing forces the rollback and re-run.
//
// Ops must therefore be re-runnable: an op may run twice in one batch (the
// first run rolled back), and only the last run's effects are committed.
// Its SQL sees the database as it was before the batch both times; its Go
// side must only assign its outputs (n = ..., t = ...; reset a sum before
// adding to it), never append to or increment state captured from outside,
// nor do anything that must happen once (close a channel, send a message).
// Whatever must happen once belongs to the caller, after write returns.
//
// A caller whose context ends while its op is still queued gets ctx.Err()
// and the op is never run. Once the writer has taken the op, the caller
// waits for the batch's outcome whatever its context says, so that an op
// that committed is never reported as failed. Ops run with the writer's own
// context, never the caller's: a cancelled caller cannot interrupt the
// shared transaction.

// maxBatch bounds how many ops share one transaction (and so how long the
// first of them waits for the others).
const maxBatch = 1024

// queueSize is how many ops may wait for the writer; beyond it callers block
// (backpressure) until their context ends.
const queueSize = 4 * maxBatch

// errClosed is returned for a write after Close.
var errClosed = fmt.Errorf("store closed: %w", nv.ErrUnavailable)

// op states.
const (
	opQueued int32 = iota
	opTaken
	opCancelled
)

// op is one caller's write.
type op struct {
	fn    func(*wtx) error
	after func() // run once the batch committed, if fn succeeded (writeThen)
	state atomic.Int32
	err   error
	done  chan struct{}
}

// noEffectError is an op's error when the op failed before changing
// anything in the database, and so needs no rollback: every statement it
// ran succeeded and changed no row. Only the error an op returns is looked
// at (a type assertion, never errors.As): an op that wrote before calling
// something that returned a marked error must not pass the mark on, and
// wrapping the error (fmt.Errorf) drops it, which is the safe default. The
// writer hands the caller the error inside, so callers see no difference.
type noEffectError struct{ err error }

func (e *noEffectError) Error() string { return e.err.Error() }
func (e *noEffectError) Unwrap() error { return e.err }

// noEffect marks err as the error of an op that changed nothing. Use it
// only where that is certain: the op's statements so far all succeeded and
// changed no row (no trigger fires on a statement that changes no row).
func noEffect(err error) error { return &noEffectError{err} }

// unmark returns err without its noEffect mark, and whether it had one.
func unmark(err error) (error, bool) {
	if e, ok := err.(*noEffectError); ok {
		return e.err, true
	}
	return err, false
}

// WriteStats are the write path's counters, for metrics.
type WriteStats struct {
	// Queued is how many ops wait for the writer now (backpressure).
	Queued int
	// Batches and Ops count committed-or-failed transactions and the ops
	// they carried; Ops/Batches is the mean batch size.
	Batches, Ops uint64
	// Failed counts ops that returned an error (lost races included);
	// Aborted counts batches whose transaction failed as a whole.
	Failed, Aborted uint64
	// Cancelled counts ops whose caller gave up before the writer took them.
	Cancelled uint64
	// Reruns counts batches run a second time, with a savepoint per op,
	// because an op failed on the first run (which has none) after it
	// may have written. An op that failed having changed nothing (a
	// replayed token or jti, a lost race) causes no re-run.
	Reruns uint64
	// SyncSeconds is the total time spent in COMMIT (the WAL sync).
	SyncSeconds float64
}

// writer is the group-commit loop and its queue.
type writer struct {
	q      chan *op
	mu     sync.RWMutex // held for reading while sending on q; Close takes it to close q
	closed bool
	done   chan struct{}

	conn  *sql.Conn
	ctx   context.Context
	stmts map[string]*sql.Stmt

	// seq is held while a batch runs, from BEGIN to its last after func:
	// whoever holds it sees no write of this store in flight (the session
	// index, sessionindex.go, takes it to snapshot, install and check).
	seq sync.Mutex

	batches, ops, failed, aborted, cancelled, reruns atomic.Uint64
	syncNanos                                        atomic.Int64
}

func newWriter(conn *sql.Conn) *writer {
	w := &writer{
		q:     make(chan *op, queueSize),
		done:  make(chan struct{}),
		conn:  conn,
		ctx:   context.Background(),
		stmts: map[string]*sql.Stmt{},
	}
	go w.loop()
	return w
}

// write queues fn and returns its error once the batch holding it is
// committed (nil) or failed.
func (s *Store) write(ctx context.Context, fn func(*wtx) error) error {
	return s.wr.submit(ctx, fn, nil)
}

// writeThen is write, with after run on the writer after the batch holding
// fn committed, only if fn succeeded, before the caller is answered. after
// applies what fn recorded (its last run's: a batch may run twice) to
// memory; it never runs for a failed op or a batch that did not commit.
func (s *Store) writeThen(ctx context.Context, fn func(*wtx) error, after func()) error {
	return s.wr.submit(ctx, fn, after)
}

func (w *writer) submit(ctx context.Context, fn func(*wtx) error, after func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o := &op{fn: fn, after: after, done: make(chan struct{})}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return errClosed
	}
	select {
	case w.q <- o:
	default:
		// The queue is full: wait for room, or give up with the context.
		select {
		case w.q <- o:
		case <-ctx.Done():
			w.mu.RUnlock()
			w.cancelled.Add(1)
			return ctx.Err()
		}
	}
	w.mu.RUnlock()
	select {
	case <-o.done:
		return o.err
	case <-ctx.Done():
		if o.state.CompareAndSwap(opQueued, opCancelled) {
			w.cancelled.Add(1)
			return ctx.Err()
		}
		<-o.done // taken: its outcome is decided by the batch
		return o.err
	}
}

// close stops accepting ops, lets the writer finish the queued ones, and
// waits for it.
func (w *writer) close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.q)
	}
	w.mu.Unlock()
	<-w.done
}

func (w *writer) stats() WriteStats {
	return WriteStats{
		Queued:      len(w.q),
		Batches:     w.batches.Load(),
		Ops:         w.ops.Load(),
		Failed:      w.failed.Load(),
		Aborted:     w.aborted.Load(),
		Cancelled:   w.cancelled.Load(),
		Reruns:      w.reruns.Load(),
		SyncSeconds: time.Duration(w.syncNanos.Load()).Seconds(),
	}
}

func (w *writer) loop() {
	defer close(w.done)
	defer func() {
		for _, st := range w.stmts {
			st.Close()
		}
		w.conn.Close()
	}()
	batch := make([]*op, 0, maxBatch)
	for o := range w.q {
		batch = append(batch[:0], o)
	fill:
		for len(batch) < maxBatch {
			select {
			case o, ok := <-w.q:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
		w.run(batch)
		clear(batch)
	}
}

// run executes one batch and answers each of its callers.
func (w *writer) run(batch []*op) {
	taken := batch[:0]
	for _, o := range batch {
		if o.state.CompareAndSwap(opQueued, opTaken) {
			taken = append(taken, o)
		}
	}
	if len(taken) == 0 {
		return
	}
	w.seq.Lock()
	defer w.seq.Unlock()
	w.batches.Add(1)
	w.ops.Add(uint64(len(taken)))
	if !w.runFast(taken) {
		w.reruns.Add(1)
		w.runSavepoints(taken)
	}
}

// runFast runs the batch with no savepoint and commits it if every op
// succeeds or fails having changed nothing (noEffect). When one fails
// otherwise it rolls the whole transaction back and returns
// false for the batch to run again with a savepoint per op, unless the
// batch is that op alone (it is answered with its error: a rollback of the
// transaction is a rollback of the op) or the failure took the transaction
// with it (the batch is lost, as it would be with savepoints).
func (w *writer) runFast(taken []*op) (done bool) {
	if err := w.execRaw("BEGIN IMMEDIATE"); err != nil {
		w.abort(taken, fmt.Errorf("begin: %w", err))
		return true
	}
	tx := &wtx{w: w}
	for i, o := range taken {
		err := w.call(o.fn, tx)
		if err == nil {
			continue
		}
		if err, ok := unmark(err); ok {
			o.err = err // nothing to undo: answered with its error at commit
			continue
		}
		// ROLLBACK fails only when SQLite has already rolled the
		// transaction back (an I/O error, a full disk): the batch is lost,
		// as when the savepoint is gone in runSavepoints.
		if rerr := w.execRaw("ROLLBACK"); rerr != nil {
			w.abort(taken, fmt.Errorf("op %d failed (%w) and took its transaction with it: %w", i, err, rerr))
			return true
		}
		if len(taken) > 1 {
			return false
		}
		o.err = err
		w.failed.Add(1)
		close(o.done)
		return true
	}
	w.commit(taken)
	return true
}

// runSavepoints runs the batch with a savepoint per op, so that an op
// that fails is rolled back alone and its batch-mates commit.
func (w *writer) runSavepoints(taken []*op) {
	tx := &wtx{w: w}
	if err := w.execRaw("BEGIN IMMEDIATE"); err != nil {
		w.abort(taken, fmt.Errorf("begin: %w", err))
		return
	}
	for i, o := range taken {
		if err := w.execRaw("SAVEPOINT op"); err != nil {
			w.rollback()
			w.abort(taken, fmt.Errorf("savepoint: %w", err))
			return
		}
		o.err, _ = unmark(w.call(o.fn, tx))
		if o.err != nil {
			// Undo this op alone. If the savepoint is gone, SQLite has
			// already rolled back the whole transaction (an I/O error,
			// a full disk): the batch is lost.
			if err := w.execRaw("ROLLBACK TO op"); err != nil {
				w.rollback()
				w.abort(taken, fmt.Errorf("op %d failed (%w) and took its transaction with it: %w", i, o.err, err))
				return
			}
		}
		if err := w.execRaw("RELEASE op"); err != nil {
			w.rollback()
			w.abort(taken, fmt.Errorf("release savepoint: %w", err))
			return
		}
	}
	w.commit(taken)
}

// commit commits the batch's transaction and answers its callers: each
// with its op's error once the commit is durable, or all with the
// commit's error.
func (w *writer) commit(taken []*op) {
	start := time.Now()
	err := w.execRaw("COMMIT")
	w.syncNanos.Add(int64(time.Since(start)))
	if err != nil {
		w.rollback()
		w.abort(taken, fmt.Errorf("commit: %w", err))
		return
	}
	for _, o := range taken {
		if o.err == nil && o.after != nil {
			o.after()
		}
	}
	for _, o := range taken {
		if o.err != nil {
			w.failed.Add(1)
		}
		close(o.done)
	}
}

// call runs fn, turning a panic into the op's error so that one bad op
// cannot take the writer down.
func (w *writer) call(fn func(*wtx) error, tx *wtx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in write: %v", r)
		}
	}()
	return fn(tx)
}

// abort fails every op of a lost transaction.
func (w *writer) abort(taken []*op, err error) {
	w.aborted.Add(1)
	w.failed.Add(uint64(len(taken)))
	if !errors.Is(err, nv.ErrUnavailable) {
		err = fmt.Errorf("%w: %w", nv.ErrUnavailable, err)
	}
	for _, o := range taken {
		o.err = fmt.Errorf("transaction not committed: %w", err)
		close(o.done)
	}
}

// rollback ends a failed transaction; an error means there was none left.
func (w *writer) rollback() { w.execRaw("ROLLBACK") }

func (w *writer) execRaw(q string) error {
	st, err := w.stmt(q)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(w.ctx)
	return err
}

// stmt returns the prepared statement for q on the write connection.
func (w *writer) stmt(q string) (*sql.Stmt, error) {
	if st, ok := w.stmts[q]; ok {
		return st, nil
	}
	st, err := w.conn.PrepareContext(w.ctx, q)
	if err != nil {
		return nil, err
	}
	w.stmts[q] = st
	return st, nil
}

// wtx is what an op runs its statements on: the writer's connection,
// inside the batch's transaction (and, on a re-run, the op's savepoint).
type wtx struct{ w *writer }

// exec runs one statement and returns how many rows it changed.
func (t *wtx) exec(q string, args ...any) (int64, error) {
	st, err := t.w.stmt(q)
	if err != nil {
		return 0, err
	}
	res, err := st.ExecContext(t.w.ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// queryRow runs a statement returning at most one row.
func (t *wtx) queryRow(q string, args ...any) *sql.Row {
	st, err := t.w.stmt(q)
	if err != nil {
		return t.w.conn.QueryRowContext(t.w.ctx, q, args...) // carries the error
	}
	return st.QueryRowContext(t.w.ctx, args...)
}

// WriteStats returns the write path's counters.
func (s *Store) WriteStats() WriteStats { return s.wr.stats() }
