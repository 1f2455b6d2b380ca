package radius

import (
	"sync"
	"time"
)

// replayCache remembers the answers to recorded packets (by sender,
// Identifier and Request Authenticator) for a window, so retransmits and
// replays are answered without touching the store again. Bounded: the
// oldest entries are evicted first.
type replayCache struct {
	mu      sync.Mutex
	window  time.Duration
	max     int
	entries map[replayKey]replayEntry
	order   []replayKey // insertion order, for eviction
}

type replayEntry struct {
	at   time.Time
	resp []byte
}

func newReplayCache(window time.Duration, max int) *replayCache {
	return &replayCache{window: window, max: max, entries: map[replayKey]replayEntry{}}
}

func (c *replayCache) answer(key replayKey, now time.Time) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || now.Sub(e.at) > c.window {
		return nil, false
	}
	return e.resp, true
}

func (c *replayCache) remember(key replayKey, resp []byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok {
		c.order = append(c.order, key)
	}
	c.entries[key] = replayEntry{at: now, resp: resp}
	for len(c.order) > c.max {
		delete(c.entries, c.order[0])
		c.order = c.order[1:]
	}
}

// sweep drops entries older than the window.
func (c *replayCache) sweep(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := 0
	for ; i < len(c.order); i++ {
		e, ok := c.entries[c.order[i]]
		if ok && now.Sub(e.at) <= c.window {
			break
		}
		delete(c.entries, c.order[i])
	}
	c.order = append([]replayKey(nil), c.order[i:]...)
}
