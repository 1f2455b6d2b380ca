package limits

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func TestKeyedRate(t *testing.T) {
	k := NewKeyed(3, time.Second, 0)
	for i := range 3 {
		if _, ok, _ := k.Take("a", t0); !ok {
			t.Fatalf("event %d of a burst of 3 refused", i+1)
		}
	}
	_, ok, retry := k.Take("a", t0)
	if ok || retry <= 0 || retry > 334*time.Millisecond {
		t.Fatalf("4th event: ok %v, retry after %v (want about 1/3 s)", ok, retry)
	}
	if _, ok, _ := k.Take("b", t0); !ok {
		t.Error("another key shares a's bucket")
	}
	if _, ok, _ := k.Take("a", t0.Add(retry)); !ok {
		t.Error("refused after the advertised Retry-After")
	}
	if _, ok, _ := k.Take("a", t0.Add(retry)); ok {
		t.Error("a second event allowed after one refill")
	}
	if got := retryAfterSeconds(retry); got != 1 {
		t.Errorf("Retry-After of %v = %d s, want 1", retry, got)
	}
}

func TestKeyedCancel(t *testing.T) {
	k := NewKeyed(1, time.Minute, 0)
	res, ok, _ := k.Take("a", t0)
	if !ok {
		t.Fatal("first event refused")
	}
	res.Cancel()
	if _, ok, _ := k.Take("a", t0.Add(time.Millisecond)); !ok {
		t.Error("a cancelled event was not given back")
	}
	if _, ok, retry := k.Take("a", t0.Add(2*time.Millisecond)); ok || retryAfterSeconds(retry) != 60 {
		t.Errorf("bucket of 1/m after its event: ok %v, retry %v", ok, retry)
	}
}

// TestKeyedBoundedMemory: keys idle for a period are forgotten (their
// bucket would be full again anyway), and a flood of distinct keys never
// holds more than two generations of maxKeys.
func TestKeyedBoundedMemory(t *testing.T) {
	k := NewKeyed(2, time.Second, 100)
	for i := range 10_000 {
		k.Take(fmt.Sprint("flood-", i), t0.Add(time.Duration(i)*time.Microsecond))
		if n := k.Len(); n > 200 {
			t.Fatalf("%d keys remembered after %d distinct ones, bound 200", n, i+1)
		}
	}
	// A bucket drained just before a generation swap is still drained
	// just after it: only idle (full) buckets are forgotten.
	k = NewKeyed(2, time.Second, 100)
	k.Take("first", t0) // the generation starts at t0
	k.Take("a", t0.Add(900*time.Millisecond))
	k.Take("a", t0.Add(900*time.Millisecond))
	if _, ok, _ := k.Take("a", t0.Add(1100*time.Millisecond)); ok {
		t.Error("a drained bucket was refilled by a generation swap")
	}
	if _, ok, _ := k.Take("a", t0.Add(1500*time.Millisecond)); !ok {
		t.Error("refused after refilling at 2/s")
	}
	// ...and after three idle periods nothing is left.
	k.Take("z", t0.Add(10*time.Second))
	if n := k.Len(); n != 1 {
		t.Errorf("%d keys remembered after every other key idled for 3 periods, want 1", n)
	}
}
