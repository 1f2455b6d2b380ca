package main

import (
	"context"
	"crypto/tls"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/numbergate/numbergate/internal/config"
	"github.com/numbergate/numbergate/internal/server"
)

// certPollInterval is how often the certificate files are checked for a
// change.
const certPollInterval = 2 * time.Second

// listenerTLS holds the certificates of the listeners that serve HTTPS.
type listenerTLS struct {
	public, admin *tls.Config
	certs         []*server.Certificate
}

// loadTLS reads the certificates named by tls and admin_tls; a bad pair
// fails the start.
func loadTLS(cfg *config.Config, log *slog.Logger) (listenerTLS, error) {
	var lt listenerTLS
	for _, l := range []struct {
		name string
		c    *config.TLS
		dst  **tls.Config
	}{{"tls", cfg.TLS, &lt.public}, {"admin_tls", cfg.AdminTLS, &lt.admin}} {
		if l.c == nil {
			continue
		}
		cert, err := server.LoadCertificate(l.c.CertFile, l.c.KeyFile, log.With("config", l.name))
		if err != nil {
			return lt, err
		}
		*l.dst = cert.TLSConfig()
		lt.certs = append(lt.certs, cert)
	}
	return lt, nil
}

// watch reloads the certificates on SIGHUP and when their files change,
// until ctx is done. SIGHUP is caught even without TLS (operators send it
// expecting a reload; by default it would end the process): it is logged.
func (lt listenerTLS) watch(ctx context.Context, bg *errgroup.Group, log *slog.Logger) {
	for _, c := range lt.certs {
		bg.Go(func() error { c.Watch(ctx, certPollInterval); return nil })
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	bg.Go(func() error {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-hup:
				if len(lt.certs) == 0 {
					log.Info("SIGHUP: nothing to reload (no tls certificate; the configuration is read at start only)")
				}
				for _, c := range lt.certs {
					_ = c.Reload("SIGHUP")
				}
			}
		}
	})
}
