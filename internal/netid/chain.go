package netid

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/numbergate/numbergate/internal/nv"
)

// Source is a named resolver.
type Source interface {
	nv.Resolver
	Name() string
}

// Chain tries its sources in order and returns the first identity found.
// nv.ErrUnknownDevice from a source moves on to the next one; any other
// error (a store that is down, a bad login_hint) stops the chain and is
// returned as is, so an outage is never mistaken for an unknown device.
type Chain struct {
	sources []Source
	log     *slog.Logger
}

// NewChain builds a chain over sources, tried in the given order. logger
// may be nil.
func NewChain(logger *slog.Logger, sources ...Source) *Chain {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Chain{sources: append([]Source(nil), sources...), log: logger}
}

// NewChainOrder builds a chain from the configured order (source names)
// and the sources available. It reports every unknown or repeated name at
// once. An empty order uses available in the order given.
func NewChainOrder(logger *slog.Logger, order []string, available ...Source) (*Chain, error) {
	if len(order) == 0 {
		return NewChain(logger, available...), nil
	}
	byName := make(map[string]Source, len(available))
	for _, s := range available {
		byName[s.Name()] = s
	}
	var (
		problems []string
		seen     = map[string]bool{}
		sources  []Source
	)
	for _, name := range order {
		s, ok := byName[name]
		switch {
		case seen[name]:
			problems = append(problems, fmt.Sprintf("source %q listed twice", name))
		case !ok:
			problems = append(problems, fmt.Sprintf("source %q is unknown or not configured", name))
		default:
			sources = append(sources, s)
		}
		seen[name] = true
	}
	if len(problems) > 0 {
		return nil, errors.New("network order: " + strings.Join(problems, "; "))
	}
	return NewChain(logger, sources...), nil
}

// Sources returns the names of the chain's sources, in order.
func (c *Chain) Sources() []string {
	names := make([]string, len(c.sources))
	for i, s := range c.sources {
		names[i] = s.Name()
	}
	return names
}

// Resolve implements nv.Resolver.
func (c *Chain) Resolve(ctx context.Context, conn nv.Connection) (nv.Identity, error) {
	for _, s := range c.sources {
		id, err := s.Resolve(ctx, conn)
		switch {
		case err == nil:
			if id.Method == "" {
				id.Method = nv.AuthNetwork
			}
			if id.Source == "" {
				id.Source = s.Name()
			}
			c.log.DebugContext(ctx, "device identified", "source", id.Source, "addr", conn.Addr.String(), "msisdn", id.MSISDN.Masked())
			return id, nil
		case errors.Is(err, nv.ErrUnknownDevice):
			continue
		default:
			c.log.WarnContext(ctx, "network source failed", "source", s.Name(), "addr", conn.Addr.String(), "err", err)
			return nv.Identity{}, fmt.Errorf("network source %s: %w", s.Name(), err)
		}
	}
	c.log.DebugContext(ctx, "device not identified", "addr", conn.Addr.String())
	return nv.Identity{}, nv.ErrUnknownDevice
}
