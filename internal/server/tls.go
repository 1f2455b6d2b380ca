package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Certificate serves a TLS certificate and key read from files, and reads
// them again on Reload (SIGHUP) and when Watch sees the files change.
// Connections already established keep going: only new handshakes see the
// new certificate. A reload that fails (a missing file, a key that does not
// match) keeps the certificate in use and is logged.
type Certificate struct {
	certFile, keyFile string
	log               *slog.Logger
	cert              atomic.Pointer[tls.Certificate]

	mu   sync.Mutex // serializes loads; guards seen
	seen [2]fileStamp
}

type fileStamp struct {
	size    int64
	modTime time.Time
	ok      bool
}

func stamp(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{size: fi.Size(), modTime: fi.ModTime(), ok: true}
}

// LoadCertificate reads the certificate (PEM, leaf first, then the chain)
// and its private key.
func LoadCertificate(certFile, keyFile string, log *slog.Logger) (*Certificate, error) {
	c := &Certificate{certFile: certFile, keyFile: keyFile, log: log}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Certificate) load() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = [2]fileStamp{stamp(c.certFile), stamp(c.keyFile)}
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate %s with key %s: %w", c.certFile, c.keyFile, err)
	}
	c.cert.Store(&pair)
	return nil
}

// Reload reads the files again; on error the certificate in use is kept.
func (c *Certificate) Reload(reason string) error {
	if err := c.load(); err != nil {
		c.log.Error("TLS certificate not reloaded: keeping the one in use", "reason", reason, "err", err)
		return err
	}
	leaf := c.cert.Load().Leaf
	attrs := []any{"reason", reason, "cert_file", c.certFile}
	if leaf != nil {
		attrs = append(attrs, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	c.log.Info("TLS certificate reloaded", attrs...)
	return nil
}

// Watch reloads the certificate whenever either file's size or
// modification time changes, checking every interval, until ctx is done.
func (c *Certificate) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := [2]fileStamp{stamp(c.certFile), stamp(c.keyFile)}
		c.mu.Lock()
		changed := now != c.seen
		c.mu.Unlock()
		if changed && now[0].ok && now[1].ok {
			_ = c.Reload("files changed")
		}
	}
}

// GetCertificate implements tls.Config.GetCertificate.
func (c *Certificate) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if cert := c.cert.Load(); cert != nil {
		return cert, nil
	}
	return nil, errors.New("no TLS certificate loaded")
}

// TLSConfig is the server configuration: TLS 1.2 or later, HTTP/2 and
// HTTP/1.1 offered by ALPN, the certificate from c.
func (c *Certificate) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: c.GetCertificate,
	}
}
