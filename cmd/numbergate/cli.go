package main

import (
	"context"

	"github.com/numbergate/numbergate/internal/cli"
	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/sqlite"
)

func newCLI() *cli.CLI {
	return cli.New(func(ctx context.Context, dir string) (nv.Store, error) { return sqlite.Open(ctx, dir) })
}
