package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/numbergate/numbergate/internal/cmdline"
	"github.com/numbergate/numbergate/internal/config"
	"github.com/numbergate/numbergate/internal/netid"
	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/server"
	"github.com/numbergate/numbergate/internal/sqlite"
)

// proxyHeaderTimeout bounds how long a load balancer may take to send the
// PROXY header of a connection.
const proxyHeaderTimeout = 5 * time.Second

// drainTimeout bounds how long SIGTERM waits for in-flight requests.
const drainTimeout = 15 * time.Second

const serveFooter = `environment (overrides the file):
  ` + config.EnvListen + `        the public listener, host:port
  ` + config.EnvAdminListen + `  the admin listener, host:port
  ` + config.EnvDataDir + `      the data directory
  ` + config.EnvStoreDSN + `     the PostgreSQL connection string (store.dsn)

Every configuration key, its type, default and meaning: docs/configuration.md
in the source tree.`

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := cmdline.New("serve", "--config FILE", stdout)
	fs.Description = "Runs the authorization server and the Number Verification API on the public\nlistener, metrics and health on the admin listener, and the configured\nnetwork feeds (RADIUS accounting, CGNAT syslog)."
	fs.Footer = serveFooter
	path := fs.String("config", "", "configuration `FILE` (YAML; see docs/configuration.md)")
	if _, err := fs.Parse(args, 0); err != nil {
		return err
	}
	if *path == "" {
		return fmt.Errorf("serve: --config FILE is required (every key is described in docs/configuration.md)")
	}
	cfg, err := config.LoadEnv(*path, getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	return serve(ctx, cfg, log, serveListeners{})
}

// serveListeners lets tests hand in listeners they bound themselves.
type serveListeners struct {
	public, admin net.Listener
	radius, cgnat net.PacketConn
	// ready, if set, is called once everything is listening.
	ready func()
	// storeClosing, if set, is called just before the store closes.
	storeClosing func()
}

func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, ls serveListeners) (err error) {
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if ls.storeClosing != nil {
			ls.storeClosing()
		}
		st.Close()
	}()
	if sq, ok := st.(*sqlite.Store); ok {
		warnTightened(log, sq)
	}

	if err := refuseWildcardPurposes(ctx, st); err != nil {
		return err
	}
	if err := st.ReplaceStaticRoutes(ctx, cfg.Network.Static); err != nil {
		return fmt.Errorf("load the static network map: %w", err)
	}
	resolver, err := buildResolver(ctx, cfg, st, log)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings() {
		log.Warn(w)
	}
	if len(resolver.Sources()) == 0 {
		log.Warn("no network source is configured: every device will be refused (access_denied); " +
			"configure network.static, network.radius, network.cgnat or network.header_enrichment (docs/configuration.md)")
	}
	var enrichProxies []netip.Prefix
	var enrichHeaders []string
	if h := cfg.Network.HeaderEnrichment; h != nil {
		enrichProxies, enrichHeaders = h.Proxies, h.Headers
	}
	a, err := newApp(ctx, appConfig{
		issuer:         cfg.Issuer,
		store:          st,
		resolver:       resolver,
		trustedProxies: cfg.TrustedProxies,
		enrichProxies:  enrichProxies,
		enrichHeaders:  enrichHeaders,
		tokenLifetime:  cfg.Auth.TokenLifetime,
		codeLifetime:   cfg.Auth.CodeLifetime,
		clockSkew:      cfg.Auth.ClockSkew,
		limits:         &cfg.Limits,
		usageRetention: cfg.Usage.Retention,
		log:            log,
	})
	if err != nil {
		return err
	}

	lt, err := loadTLS(cfg, log)
	if err != nil {
		for _, l := range []net.Listener{ls.public, ls.admin} {
			if l != nil {
				l.Close()
			}
		}
		return err
	}
	if ls.public == nil {
		if ls.public, err = listen(cfg.Listen); err != nil {
			return err
		}
	}
	if pp := cfg.ProxyProtocol; pp != nil {
		ls.public = server.ProxyProtocolListener(ls.public, pp.Trusted, proxyHeaderTimeout, log)
		log.Info("PROXY protocol required from", "peers", fmt.Sprint(pp.Trusted))
	}
	if ls.admin == nil {
		if ls.admin, err = listen(cfg.AdminListen); err != nil {
			ls.public.Close()
			return err
		}
	}
	// Every goroutine serve starts (feeds, the store collector) runs in bg
	// and is stopped and waited for before the store closes (the deferred
	// Close above runs after this), also when start-up fails half-way.
	ctx, cancel := context.WithCancelCause(ctx)
	var bg errgroup.Group
	started := false
	defer func() {
		cancel(nil)
		if werr := bg.Wait(); werr != nil {
			log.Error("network feed stopped with an error", "err", werr)
		}
		if started {
			log.Info("numbergate stopped")
		}
	}()
	if err := startFeeds(ctx, &bg, cfg, st, a, log, ls); err != nil {
		ls.public.Close()
		ls.admin.Close()
		return err
	}
	bg.Go(func() error { a.collectLoop(ctx, time.Minute); return nil })
	lt.watch(ctx, &bg, log)
	started = true
	log.Info("numbergate serving", "issuer", cfg.Issuer, "sources", sourceNames(resolver))
	if ls.ready != nil {
		ls.ready()
	}
	err = server.Serve(ctx, log, drainTimeout,
		server.Listener{Name: "public", Listener: ls.public, Handler: a.public, TLS: lt.public},
		server.Listener{Name: "admin", Listener: ls.admin, Handler: a.admin, TLS: lt.admin},
	)
	return err
}

// refuseWildcardPurposes stops serve when a client is onboarded for every
// purpose (nv.AnyPurpose): the wildcard exists only for the sandbox's demo
// client, and `clients add` refuses it.
func refuseWildcardPurposes(ctx context.Context, st nv.ClientStore) error {
	clients, err := st.Clients(ctx)
	if err != nil {
		return fmt.Errorf("read the clients: %w", err)
	}
	for _, c := range clients {
		if slices.Contains(c.Purposes, nv.AnyPurpose) {
			return fmt.Errorf("client %q is onboarded for %s, which only the sandbox allows: re-add it with explicit --purpose values (numbergate clients add --replace) or remove it", c.ID, nv.AnyPurpose)
		}
	}
	return nil
}

func sourceNames(r *netid.Chain) []string { return r.Sources() }

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}
