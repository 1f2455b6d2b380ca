package api_test

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

// memTokens is a minimal nv.TokenStore with the documented semantics, for
// the handler tests and the benchmark.
type memTokens struct {
	mu      sync.Mutex
	m       map[string]nv.AccessToken
	used    map[string]bool
	records []nv.UsageRecord // stored by ConsumeTokenFor
}

func newMemTokens() *memTokens {
	return &memTokens{m: map[string]nv.AccessToken{}, used: map[string]bool{}}
}

func (s *memTokens) SaveToken(_ context.Context, t nv.AccessToken) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[t.Hash]; ok {
		return nv.ErrAlreadyExists
	}
	s.m[t.Hash] = t
	return nil
}

func (s *memTokens) ConsumeToken(_ context.Context, hash string, now time.Time) (nv.AccessToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[hash]
	switch {
	case !ok:
		return nv.AccessToken{}, nv.ErrNotFound
	case s.used[hash]:
		return nv.AccessToken{}, nv.ErrConsumed
	}
	s.used[hash] = true
	if !now.Before(t.ExpiresAt) {
		return t, nv.ErrExpired
	}
	return t, nil
}

func (s *memTokens) Token(_ context.Context, hash string) (nv.AccessToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[hash]
	if !ok {
		return nv.AccessToken{}, nv.ErrNotFound
	}
	return t, nil
}

func (s *memTokens) ConsumeTokenFor(ctx context.Context, hash string, now time.Time, record nv.UsageRecorder) (nv.AccessToken, error) {
	t, err := s.ConsumeToken(ctx, hash, now)
	if err != nil && !errors.Is(err, nv.ErrExpired) || record == nil {
		return t, err
	}
	if r, ok := record(t, err); ok {
		s.mu.Lock()
		s.records = append(s.records, r)
		s.mu.Unlock()
	}
	return t, err
}
