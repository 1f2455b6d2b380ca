package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"golang.org/x/sync/errgroup"

	"github.com/numbergate/numbergate/internal/cgnat"
	"github.com/numbergate/numbergate/internal/config"
	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/radius"
)

// startFeeds starts the configured network feeds in bg; they stop with
// ctx. Listeners are bound before it returns, so a bad address fails the
// start; the feeds started before a failure are in bg, for the caller to
// cancel and wait for.
func startFeeds(ctx context.Context, bg *errgroup.Group, cfg *config.Config, st nv.Store, a *app, log *slog.Logger, ls serveListeners) error {
	if rc := cfg.Network.RADIUS; rc != nil {
		clients := make([]radius.Client, len(rc.Clients))
		for i, c := range rc.Clients {
			clients[i] = radius.Client{Name: c.Name, CIDR: c.CIDR, Secret: []byte(c.Secret), RequireMessageAuthenticator: c.RequireMessageAuthenticator}
		}
		srv, err := radius.New(radius.Config{Clients: clients, IdleTimeout: rc.IdleTimeout}, st, radius.Options{
			Logger:  log.With("feed", "radius"),
			Metrics: radius.NewMetrics(a.registry),
		})
		if err != nil {
			return fmt.Errorf("network.radius: %w", err)
		}
		registerQueueDepth(a.registry, "numbergate_radius_queue_depth",
			"Authentic RADIUS packets waiting for a store worker (backpressure; full queues drop packets as result=\"overload\").", srv.QueueDepth)
		pc := ls.radius
		if pc == nil {
			if pc, err = net.ListenPacket("udp", rc.Listen); err != nil {
				return fmt.Errorf("network.radius.listen: %w", err)
			}
		}
		log.Info("listening", "listener", "radius", "addr", pc.LocalAddr().String())
		bg.Go(func() error {
			defer pc.Close()
			if err := srv.Serve(ctx, pc); err != nil {
				return fmt.Errorf("radius accounting: %w", err)
			}
			return nil
		})
	}
	if cc := cfg.Network.CGNAT; cc != nil {
		ing, err := cgnat.New(cgnat.Config{SyslogListen: cc.SyslogListen, Files: cc.Files, Senders: cc.Senders}, st, cgnat.Options{
			Logger:  log.With("feed", "cgnat"),
			Metrics: cgnat.NewMetrics(a.registry),
		})
		if err != nil {
			return fmt.Errorf("network.cgnat: %w", err)
		}
		registerQueueDepth(a.registry, "numbergate_cgnat_queue_depth",
			"CGNAT syslog records waiting for a store worker (backpressure; full queues drop records as result=\"overload\").", ing.QueueDepth)
		if len(cc.Files) > 0 {
			n, err := ing.IngestFiles(ctx)
			if err != nil {
				return fmt.Errorf("network.cgnat.files: %w", err)
			}
			log.Info("cgnat allocation logs ingested", "applied", n.Applied, "malformed", n.Malformed, "unmatched", n.Unmatched)
		}
		pc := ls.cgnat
		if pc == nil && cc.SyslogListen != "" {
			if pc, err = net.ListenPacket("udp", cc.SyslogListen); err != nil {
				return fmt.Errorf("network.cgnat.syslog_listen: %w", err)
			}
		}
		if pc != nil {
			log.Info("listening", "listener", "cgnat-syslog", "addr", pc.LocalAddr().String())
			bg.Go(func() error {
				defer pc.Close()
				if err := ing.Serve(ctx, pc); err != nil {
					return fmt.Errorf("cgnat syslog: %w", err)
				}
				return nil
			})
		}
	}
	return nil
}
