// Package callctx bounds a worker's store calls, one at a time, without a
// context.WithTimeout per call.
//
// A context.WithTimeout per packet or record (a timer, a context, its Done
// channel, and their teardown) was about 3 % of the server's CPU under
// RADIUS accounting load. A Deadline reuses one context and one timer while
// none expires: the timer is re-armed at Start and stopped at Stop; only a
// context that expired is replaced, at the next Start. Every runs a
// background poll whose each run is bounded by its period.
package callctx

import (
	"context"
	"fmt"
	"time"
)

// ErrTimeout is the cause of an expired Deadline context: it wraps
// context.DeadlineExceeded. The context's Err is context.Canceled (it is a
// cancel-cause context); Explain adds the cause to an error.
var ErrTimeout = fmt.Errorf("store call timed out: %w", context.DeadlineExceeded)

// Deadline gives one goroutine's calls, one at a time, a context that ends
// d after Start unless Stop comes first. It is not safe for concurrent use:
// each worker has its own.
type Deadline struct {
	base   context.Context
	d      time.Duration
	ctx    context.Context // nil: make a new one at Start
	cancel context.CancelCauseFunc
	timer  *time.Timer
}

// New returns a Deadline whose contexts derive from base and end d after
// each Start.
func New(base context.Context, d time.Duration) *Deadline {
	return &Deadline{base: base, d: d}
}

// Start returns the context for one call, ending d from now unless Stop
// is called first. Every Start is followed by one Stop.
func (c *Deadline) Start() context.Context {
	if c.ctx == nil {
		ctx, cancel := context.WithCancelCause(c.base)
		c.ctx, c.cancel = ctx, cancel
		c.timer = time.AfterFunc(c.d, func() { cancel(ErrTimeout) })
		return ctx
	}
	c.timer.Reset(c.d)
	return c.ctx
}

// Stop ends the bound of the call Start was called for.
func (c *Deadline) Stop() {
	if !c.timer.Stop() {
		// The timer fired (its func has run or is running): this context
		// is done, or about to be. The next call gets a new one.
		c.cancel(ErrTimeout)
		c.ctx = nil
	}
}

// Close releases the timer and context when the worker ends.
func (c *Deadline) Close() {
	if c.ctx != nil {
		c.timer.Stop()
		c.cancel(context.Canceled)
		c.ctx = nil
	}
}

// Explain returns err with ctx's cause added when ctx ended with a cause
// other than its Err (ErrTimeout for a Deadline's context), so that the
// error of a call that timed out wraps context.DeadlineExceeded.
func Explain(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
		return fmt.Errorf("%w (%w)", err, cause)
	}
	return err
}

// Every runs f every period until stop is closed, each run with a context
// that ends after period, so that a run stuck on a busy pool or a slow
// disk fails rather than delaying the next (the store's background polls).
func Every(stop <-chan struct{}, period time.Duration, f func(ctx context.Context)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), period)
			f(ctx)
			cancel()
		}
	}
}
