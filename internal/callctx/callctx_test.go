package callctx

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestDeadline: a context ends d after Start unless Stop comes first (then
// the same context serves the next call), with a cause that is
// context.DeadlineExceeded; after it ended, the next Start gives a live
// one.
func TestDeadline(t *testing.T) {
	const d = 20 * time.Millisecond
	c := New(context.Background(), d)
	defer c.Close()
	first := c.Start()
	c.Stop()
	time.Sleep(3 * d)
	if err := first.Err(); err != nil {
		t.Fatalf("context after Stop, past its bound: %v, want live", err)
	}
	if again := c.Start(); again != first {
		t.Error("a live context was not reused")
	}
	select {
	case <-first.Done():
	case <-time.After(time.Minute): // generous: a loaded machine is slow
		t.Fatal("context never ended without Stop")
	}
	if cause := context.Cause(first); !errors.Is(cause, context.DeadlineExceeded) {
		t.Errorf("cause = %v, want context.DeadlineExceeded", cause)
	}
	if err := Explain(first, errors.New("store call")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Explain = %v, want it to wrap context.DeadlineExceeded", err)
	}
	c.Stop()
	next := c.Start()
	if next.Err() != nil {
		t.Errorf("context after an expired one: %v, want live", next.Err())
	}
	c.Stop()
	if err := Explain(next, errors.New("store call")); errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Explain of a live context = %v, want the error alone", err)
	}
}

// TestDeadlineBaseCancelled: a Deadline's context ends with its base, and
// Explain then adds nothing.
func TestDeadlineBaseCancelled(t *testing.T) {
	base, cancel := context.WithCancel(context.Background())
	c := New(base, time.Hour)
	defer c.Close()
	ctx := c.Start()
	cancel()
	<-ctx.Done()
	c.Stop()
	if err := Explain(ctx, context.Canceled); !errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Explain = %v, want context.Canceled alone", err)
	}
}

// TestEvery: f runs again and again, each run with a context that ends
// within the period, until stop is closed; then Every returns.
func TestEvery(t *testing.T) {
	const period = 5 * time.Millisecond
	stop := make(chan struct{})
	runs := make(chan context.Context, 100)
	done := make(chan struct{})
	go func() {
		Every(stop, period, func(ctx context.Context) {
			select {
			case runs <- ctx:
			default:
			}
		})
		close(done)
	}()
	for range 3 {
		select {
		case ctx := <-runs:
			if d, ok := ctx.Deadline(); !ok || time.Until(d) > period {
				t.Errorf("a run's deadline: %v, %v; want within %v", d, ok, period)
			}
		case <-time.After(time.Minute): // generous: a loaded machine is slow
			t.Fatal("f did not run")
		}
	}
	close(stop)
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Every did not return after stop")
	}
}
