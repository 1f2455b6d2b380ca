package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/numbergate/numbergate/internal/admin"
	"github.com/numbergate/numbergate/internal/api"
	"github.com/numbergate/numbergate/internal/authz"
	"github.com/numbergate/numbergate/internal/config"
	"github.com/numbergate/numbergate/internal/limits"
	"github.com/numbergate/numbergate/internal/netid"
	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/server"
)

// app is one running numbergate: the store, the resolver and the handlers
// built on them. serve and sandbox differ only in what they feed it.
type app struct {
	log      *slog.Logger
	store    nv.Store
	registry *prometheus.Registry
	metrics  *admin.Metrics
	public   http.Handler
	admin    http.Handler
	// usageRetention is how long usage records are kept.
	usageRetention time.Duration
}

type appConfig struct {
	issuer         string
	store          nv.Store
	resolver       nv.Resolver
	trustedProxies []netip.Prefix
	enrichProxies  []netip.Prefix
	enrichHeaders  []string
	tokenLifetime  time.Duration
	codeLifetime   time.Duration
	clockSkew      time.Duration
	sandbox        bool
	// limits of serve (the sandbox has none); daily quotas are on
	// whenever limits are.
	limits *config.Limits
	// usageRetention is how long usage records are kept (0: the default).
	usageRetention time.Duration
	log            *slog.Logger
}

func newApp(ctx context.Context, c appConfig) (*app, error) {
	reg := admin.NewRegistry()
	m := admin.NewMetrics(reg)
	registerWritePathMetrics(reg, c.store)
	registerSessionIndexMetrics(reg, c.store)
	var enrich func(*http.Request) map[string]string
	if len(c.enrichHeaders) > 0 {
		enrich = func(r *http.Request) map[string]string {
			peer := netid.ClientAddr(r, nil).Addr()
			return netid.Enrichment(r, peer, c.enrichProxies, c.enrichHeaders)
		}
	}
	// recordUsage stores a usage record for billing; a failure is logged
	// and never fails the request.
	recordUsage := func(ctx context.Context, r nv.UsageRecord) {
		if err := c.store.RecordUsage(ctx, r); err != nil {
			c.log.Warn("usage record not stored", "client_id", r.ClientID, "event", r.Event, "err", err)
		}
	}
	az, err := authz.New(ctx, authz.Config{
		Issuer:        c.issuer,
		Store:         c.store,
		Resolver:      c.resolver,
		ClientAddr:    func(r *http.Request) netip.AddrPort { return netid.ClientAddr(r, c.trustedProxies) },
		Enrichment:    enrich,
		TokenLifetime: c.tokenLifetime,
		CodeLifetime:  c.codeLifetime,
		ClockSkew:     c.clockSkew,
		Logger:        c.log,
		OnAuthorize: func(result, source string) {
			m.Authorizations.WithLabelValues(result, source).Inc()
		},
		// The token's usage record is stored with the token, in the one
		// store operation of /token (authz's IssueToken).
		OnToken: func(context.Context, nv.AccessToken) { m.TokensIssued.Inc() },
	})
	if err != nil {
		return nil, err
	}
	routes := server.Routes{
		Authz: az.Routes(),
		API: api.NewHandler(c.store, api.Options{
			Logger:     c.log,
			Observe:    func(op, code string) { m.APICalls.WithLabelValues(op, code).Inc() },
			UsageStore: c.store,
		}),
		Instrument: m.Instrument,
	}
	if c.sandbox {
		routes.SandboxTokens = sandboxTokens(c.store)
	}
	if c.limits != nil {
		routes.Guard = limits.New(limits.Config{
			AuthorizePerAddress: keyedLimiter(c.limits.AuthorizePerAddress),
			TokenPerClient:      keyedLimiter(c.limits.TokenPerClient),
			APIPerClient:        keyedLimiter(c.limits.APIPerClient),
			Clients:             c.store,
			Tokens:              c.store,
			Usage:               c.store,
			ClientAddr:          func(r *http.Request) netip.AddrPort { return netid.ClientAddr(r, c.trustedProxies) },
			Issuer:              c.issuer,
			APIError:            func(w http.ResponseWriter, err error) { api.WriteError(w, err) },
			OnLimited:           func(route, reason string) { m.Limited.WithLabelValues(route, reason).Inc() },
			Record:              recordUsage,
			Logger:              c.log,
		}).Wrap
	}
	retention := c.usageRetention
	if retention <= 0 {
		retention = config.DefaultUsageRetention
	}
	return &app{
		log:            c.log,
		store:          c.store,
		registry:       reg,
		metrics:        m,
		public:         routes.Handler(),
		admin:          admin.NewHandler(reg, c.store.Ping),
		usageRetention: retention,
	}, nil
}

// keyedLimiter is a per-key limiter of r, or nil when r is off.
func keyedLimiter(r config.Rate) *limits.Keyed {
	if r.Off() {
		return nil
	}
	return limits.NewKeyed(r.N, r.Per, limits.DefaultMaxKeys)
}

// collectLoop removes expired rows from the store every interval.
func (a *app) collectLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := time.Now()
			n, err := a.store.Collect(ctx, now)
			if err != nil {
				a.log.Warn("store collection failed", "err", err)
			} else if n > 0 {
				a.log.Debug("store collection", "removed", n)
			}
			if n, err := a.store.ExpireUsage(ctx, now.Add(-a.usageRetention)); err != nil {
				a.log.Warn("usage records past their retention could not be deleted", "err", err)
			} else if n > 0 {
				a.log.Debug("usage records expired", "removed", n)
			}
		}
	}
}

func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}
