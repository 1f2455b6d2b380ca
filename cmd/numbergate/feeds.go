package main

import (
	"context"
	"log/slog"
	"sync"

	"github.com/numbergate/numbergate/internal/config"
	"github.com/numbergate/numbergate/internal/nv"
)

// feeds are the network feeds running beside the HTTP listeners.
type feeds struct{ wg sync.WaitGroup }

// Wait returns once every feed has stopped.
func (f *feeds) Wait() { f.wg.Wait() }

// startFeeds starts the configured network feeds; they stop with ctx.
func startFeeds(ctx context.Context, cfg *config.Config, st nv.Store, a *app, log *slog.Logger) (*feeds, error) {
	f := &feeds{}
	return f, nil
}
