package main

import (
	"context"
	"log/slog"

	"github.com/numbergate/numbergate/internal/cli"
	"github.com/numbergate/numbergate/internal/config"
	"github.com/numbergate/numbergate/internal/nv"
)

// newCLI returns the operator commands on the store the configuration
// names (SQLite or PostgreSQL). `sessions lookup` resolves with the same
// chain as serve.
func newCLI() *cli.CLI {
	c := cli.New(openStore)
	c.Resolver = func(ctx context.Context, cfg *config.Config, st nv.Store) (nv.Resolver, error) {
		return buildResolver(ctx, cfg, st, slog.New(slog.DiscardHandler))
	}
	return c
}
