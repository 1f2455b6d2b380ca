package limits

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxKeys bounds how many keys (addresses, clients) one Keyed
// remembers at once.
const DefaultMaxKeys = 100_000

// Keyed is one token bucket per key (golang.org/x/time/rate): n events
// per period, in bursts of up to n. Memory is bounded: a key idle for a whole
// period has a full bucket again, the same as a key never seen, so buckets
// are kept in two generations swapped every period and a bucket untouched
// for a whole generation is dropped without changing any answer. When more
// than maxKeys keys are active within one period, the older generation is
// dropped early: those keys start again with a full bucket.
type Keyed struct {
	limit  rate.Limit
	burst  int
	period time.Duration
	max    int

	mu        sync.Mutex
	cur, prev map[string]*rate.Limiter
	rotated   time.Time // when cur became the current generation
}

// NewKeyed returns a limiter of n events per period per key (n >= 1,
// period > 0), remembering at most maxKeys keys (DefaultMaxKeys if <= 0).
func NewKeyed(n int, period time.Duration, maxKeys int) *Keyed {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &Keyed{
		limit:  rate.Limit(float64(n) / period.Seconds()),
		burst:  n,
		period: period,
		max:    maxKeys,
		cur:    map[string]*rate.Limiter{},
		prev:   map[string]*rate.Limiter{},
	}
}

// Reservation is one event taken from a key's bucket.
type Reservation struct {
	r  *rate.Reservation
	at time.Time
}

// Cancel gives the event back (as far as later events allow), for a
// request that turned out not to count.
func (r Reservation) Cancel() {
	if r.r != nil {
		r.r.CancelAt(r.at)
	}
}

// Take takes one event from key's bucket at now. When the bucket is empty
// it takes nothing and returns ok false and how long until an event would
// be allowed.
func (k *Keyed) Take(key string, now time.Time) (res Reservation, ok bool, retryAfter time.Duration) {
	l := k.bucket(key, now)
	r := l.ReserveN(now, 1)
	if !r.OK() {
		return Reservation{}, false, k.period
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return Reservation{}, false, d
	}
	return Reservation{r: r, at: now}, true, 0
}

// Len returns how many keys are remembered (for tests and metrics).
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.cur) + len(k.prev)
}

func (k *Keyed) bucket(key string, now time.Time) *rate.Limiter {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.rotated.IsZero() {
		k.rotated = now
	}
	if d := now.Sub(k.rotated); d >= k.period {
		if d >= 2*k.period {
			// Everything is idle for at least a period: forget it all.
			clear(k.prev)
			clear(k.cur)
		} else {
			k.prev, k.cur = k.cur, k.prev
			clear(k.cur)
		}
		k.rotated = now
	}
	if l, ok := k.cur[key]; ok {
		return l
	}
	if l, ok := k.prev[key]; ok {
		delete(k.prev, key)
		k.cur[key] = l
		return l
	}
	if len(k.cur) >= k.max {
		// Too many active keys: drop the older generation early.
		k.prev, k.cur = k.cur, k.prev
		clear(k.cur)
		k.rotated = now
	}
	l := rate.NewLimiter(k.limit, k.burst)
	k.cur[key] = l
	return l
}

// retryAfterSeconds rounds d up to whole seconds, at least 1, for a
// Retry-After header (RFC 9110 section 10.2.3).
func retryAfterSeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		return 1
	}
	return s
}
