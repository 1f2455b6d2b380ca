package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/numbergate/numbergate/internal/config"
	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/radius"
)

// feeds are the network feeds running beside the HTTP listeners.
type feeds struct{ wg sync.WaitGroup }

// Wait returns once every feed has stopped.
func (f *feeds) Wait() { f.wg.Wait() }

// startFeeds starts the configured network feeds; they stop with ctx.
// Listeners are bound before it returns, so a bad address fails the start.
func startFeeds(ctx context.Context, cfg *config.Config, st nv.Store, a *app, log *slog.Logger, ls serveListeners) (*feeds, error) {
	f := &feeds{}
	if rc := cfg.Network.RADIUS; rc != nil {
		clients := make([]radius.Client, len(rc.Clients))
		for i, c := range rc.Clients {
			clients[i] = radius.Client{CIDR: c.CIDR, Secret: []byte(c.Secret)}
		}
		srv, err := radius.New(radius.Config{Listen: rc.Listen, Clients: clients, IdleTimeout: rc.IdleTimeout}, st, radius.Options{
			Logger: log.With("feed", "radius"),
			Metrics: radius.Metrics{
				Dropped: func(reason string) { a.metrics.RADIUSPackets.WithLabelValues(reason).Inc() },
				Handled: func(outcome string) { a.metrics.RADIUSPackets.WithLabelValues(outcome).Inc() },
				Expired: func(n int) { a.metrics.NetworkSessionsExpired.Add(float64(n)) },
			},
		})
		if err != nil {
			return nil, fmt.Errorf("network.radius: %w", err)
		}
		pc := ls.radius
		if pc == nil {
			if pc, err = net.ListenPacket("udp", rc.Listen); err != nil {
				return nil, fmt.Errorf("network.radius.listen: %w", err)
			}
		}
		log.Info("listening", "listener", "radius", "addr", pc.LocalAddr().String())
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer pc.Close()
			if err := srv.Serve(ctx, pc); err != nil {
				log.Error("radius accounting server stopped", "err", err)
			}
		}()
	}
	return f, nil
}
