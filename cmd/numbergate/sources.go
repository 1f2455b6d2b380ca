package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/numbergate/numbergate/internal/cgnat"
	"github.com/numbergate/numbergate/internal/config"
	"github.com/numbergate/numbergate/internal/netid"
	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/radius"
)

// networkSource is one network source, defined once: its name (an
// nv.Source* constant, as written in network.order), its config section,
// the resolver it adds to the chain and, for sources that learn from the
// operator's network, the feed that fills the store for it (which creates
// and registers its own metrics). Whether a source is configured is its
// config section's business (config.Network.Configured).
//
// Adding a source touches its own package, its config section
// (internal/config: parse, validate, Configured, DefaultOrder) and one
// entry in networkSources; TestNetworkSourcesRegistry checks the entry
// against the config's default order and the README's table.
type networkSource struct {
	name    string
	section string
	// resolver returns the source's resolver over the store.
	resolver func(ctx context.Context, env sourceEnv) (netid.Source, error)
	// feed, when not nil, starts the source's feed in bg (see startFeeds).
	feed func(ctx context.Context, bg *errgroup.Group, env sourceEnv) error
}

// sourceEnv is what sources are built from.
type sourceEnv struct {
	cfg *config.Config
	st  nv.Store
	log *slog.Logger
	// reg registers the feeds' metrics (nil when only resolving, as the CLI
	// does).
	reg prometheus.Registerer
	ls  serveListeners
}

// networkSources is the registry, in the default order.
var networkSources = []networkSource{
	{
		name:    nv.SourceHeader,
		section: "network.header_enrichment",
		resolver: func(_ context.Context, env sourceEnv) (netid.Source, error) {
			return netid.NewHeader(env.cfg.Network.HeaderEnrichment.Headers, env.log), nil
		},
	},
	{
		name:    nv.SourceCGNAT,
		section: "network.cgnat",
		resolver: func(_ context.Context, env sourceEnv) (netid.Source, error) {
			return netid.NewCGNAT(env.st, idleTimeout(env.cfg)), nil
		},
		feed: startCGNAT,
	},
	{
		name:    nv.SourceRADIUS,
		section: "network.radius",
		resolver: func(_ context.Context, env sourceEnv) (netid.Source, error) {
			return netid.NewRADIUS(env.st, idleTimeout(env.cfg)), nil
		},
		feed: startRADIUS,
	},
	{
		name:    nv.SourceStatic,
		section: "network.static",
		resolver: func(ctx context.Context, env sourceEnv) (netid.Source, error) {
			static := netid.NewStatic(env.st)
			if err := static.Reload(ctx); err != nil {
				return nil, fmt.Errorf("load the static network map: %w", err)
			}
			return static, nil
		},
	},
}

// idleTimeout is how long a RADIUS session identifies its address without
// an update (the RADIUS and CGNAT sources).
func idleTimeout(cfg *config.Config) time.Duration {
	if cfg.Network.RADIUS != nil {
		return cfg.Network.RADIUS.IdleTimeout
	}
	return config.DefaultIdleTimeout
}

// buildResolver puts the configured network sources in their order.
func buildResolver(ctx context.Context, cfg *config.Config, st nv.Store, log *slog.Logger) (*netid.Chain, error) {
	env := sourceEnv{cfg: cfg, st: st, log: log}
	var available []netid.Source
	for _, s := range networkSources {
		if !cfg.Network.Configured(s.name) {
			continue
		}
		r, err := s.resolver(ctx, env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.section, err)
		}
		available = append(available, r)
	}
	chain, err := netid.NewChainOrder(log, cfg.Network.Order, available...)
	if err != nil {
		return nil, fmt.Errorf("network.order: %w", err)
	}
	return chain, nil
}

// startFeeds starts the feeds of the configured network sources in bg;
// they stop with ctx. Listeners are bound before it returns, so a bad
// address fails the start; the feeds started before a failure are in bg,
// for the caller to cancel and wait for.
func startFeeds(ctx context.Context, bg *errgroup.Group, cfg *config.Config, st nv.Store, a *app, log *slog.Logger, ls serveListeners) error {
	env := sourceEnv{cfg: cfg, st: st, log: log, reg: a.registry, ls: ls}
	for _, s := range networkSources {
		if s.feed == nil || !cfg.Network.Configured(s.name) {
			continue
		}
		if err := s.feed(ctx, bg, env); err != nil {
			return err
		}
	}
	return nil
}

// startRADIUS starts the RADIUS accounting feed.
func startRADIUS(ctx context.Context, bg *errgroup.Group, env sourceEnv) error {
	rc, log := env.cfg.Network.RADIUS, env.log
	clients := make([]radius.Client, len(rc.Clients))
	for i, c := range rc.Clients {
		clients[i] = radius.Client{Name: c.Name, CIDR: c.CIDR, Secret: []byte(c.Secret), RequireMessageAuthenticator: c.RequireMessageAuthenticator}
	}
	srv, err := radius.New(radius.Config{Clients: clients, IdleTimeout: rc.IdleTimeout}, env.st, radius.Options{
		Logger:  log.With("feed", "radius"),
		Metrics: radius.NewMetrics(env.reg),
	})
	if err != nil {
		return fmt.Errorf("network.radius: %w", err)
	}
	registerQueueDepth(env.reg, "numbergate_radius_queue_depth",
		"Authentic RADIUS packets waiting for a store worker (backpressure; full queues drop packets as result=\"overload\").", srv.QueueDepth)
	pc := env.ls.radius
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
	return nil
}

// startCGNAT ingests the CGNAT allocation files and starts the syslog feed.
func startCGNAT(ctx context.Context, bg *errgroup.Group, env sourceEnv) error {
	cc, log := env.cfg.Network.CGNAT, env.log
	ing, err := cgnat.New(cgnat.Config{SyslogListen: cc.SyslogListen, Files: cc.Files, Senders: cc.Senders}, env.st, cgnat.Options{
		Logger:  log.With("feed", "cgnat"),
		Metrics: cgnat.NewMetrics(env.reg),
	})
	if err != nil {
		return fmt.Errorf("network.cgnat: %w", err)
	}
	registerQueueDepth(env.reg, "numbergate_cgnat_queue_depth",
		"CGNAT syslog records waiting for a store worker (backpressure; full queues drop records as result=\"overload\").", ing.QueueDepth)
	if len(cc.Files) > 0 {
		n, err := ing.IngestFiles(ctx)
		if err != nil {
			return fmt.Errorf("network.cgnat.files: %w", err)
		}
		log.Info("cgnat allocation logs ingested", "applied", n.Applied, "malformed", n.Malformed, "unmatched", n.Unmatched)
	}
	pc := env.ls.cgnat
	if pc == nil && cc.SyslogListen != "" {
		if pc, err = net.ListenPacket("udp", cc.SyslogListen); err != nil {
			return fmt.Errorf("network.cgnat.syslog_listen: %w", err)
		}
	}
	if pc == nil {
		return nil
	}
	log.Info("listening", "listener", "cgnat-syslog", "addr", pc.LocalAddr().String())
	bg.Go(func() error {
		defer pc.Close()
		if err := ing.Serve(ctx, pc); err != nil {
			return fmt.Errorf("cgnat syslog: %w", err)
		}
		return nil
	})
	return nil
}
