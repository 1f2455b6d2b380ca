// Package sandboxtest starts the real numbergate sandbox in-process for
// tests outside cmd/numbergate (the Go client in pkg/nvclient, the demo
// app): the SQLite store in a temporary directory, the demo client and its
// sandbox-client.json, the authorization server, the Number Verification
// API and POST /sandbox/tokens, behind the same routes, on 127.0.0.1:0.
//
// It is wired from the same constructors as `numbergate sandbox`
// (cmd/numbergate); it leaves out only what a test does not need (metrics,
// the periodic store collection and the quick start).
package sandboxtest

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/api"
	"github.com/numbergate/numbergate/internal/authz"
	"github.com/numbergate/numbergate/internal/netid"
	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/sandbox"
	"github.com/numbergate/numbergate/internal/server"
	"github.com/numbergate/numbergate/internal/sqlite"
)

// Sandbox is a running sandbox.
type Sandbox struct {
	// Issuer is http://127.0.0.1:PORT.
	Issuer string
	// Dir is the data directory; CredentialsPath is its sandbox-client.json.
	Dir             string
	CredentialsPath string
	// Credentials are the demo client's.
	Credentials sandbox.Credentials
	// Store is the sandbox's store (tests may onboard more clients or
	// redirect URIs through it).
	Store nv.Store

	close func() error
}

// Start runs the sandbox in a temporary directory until the test ends.
func Start(t testing.TB) *Sandbox {
	t.Helper()
	s, err := Run(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("sandbox stopped with %v", err)
		}
	})
	return s
}

// Run starts the sandbox with its data in dir (created if missing) on
// 127.0.0.1:0; Close stops it.
func Run(dir string) (*Sandbox, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	issuer := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	fail := func(st *sqlite.Store, err error) (*Sandbox, error) {
		cancel()
		ln.Close()
		if st != nil {
			st.Close()
		}
		return nil, err
	}
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		return fail(nil, err)
	}
	creds, err := sandbox.EnsureDemoClient(ctx, st, dir, issuer)
	if err != nil {
		return fail(st, err)
	}
	log := slog.New(slog.DiscardHandler)
	az, err := authz.New(ctx, authz.Config{
		Issuer:     issuer,
		Store:      st,
		Resolver:   netid.NewChain(log, netid.NewSandbox()),
		ClientAddr: func(r *http.Request) netip.AddrPort { return netid.ClientAddr(r, nil) },
		Logger:     log,
	})
	if err != nil {
		return fail(st, err)
	}
	routes := server.Routes{
		Authz:         az.Routes(),
		API:           api.NewHandler(st, api.Options{Logger: log}),
		SandboxTokens: sandbox.TokenHandler(st, time.Now),
	}
	done := make(chan error, 1)
	go func() {
		done <- server.Serve(ctx, log, 5*time.Second, server.Listener{Name: "sandbox", Listener: ln, Handler: routes.Handler()})
	}()
	return &Sandbox{
		Issuer:          issuer,
		Dir:             dir,
		CredentialsPath: filepath.Join(dir, sandbox.CredentialsFile),
		Credentials:     creds,
		Store:           st,
		close: func() error {
			cancel()
			err := <-done
			if cerr := st.Close(); err == nil {
				err = cerr
			}
			return err
		},
	}, nil
}

// Close stops the sandbox and closes its store.
func (s *Sandbox) Close() error { return s.close() }

// AddRedirectURI registers one more redirect URI for the demo client (a
// test's app listens on a port of its own, not the demo client's 9999).
func (s *Sandbox) AddRedirectURI(t testing.TB, uri string) {
	t.Helper()
	ctx := context.Background()
	c, err := s.Store.Client(ctx, sandbox.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	c.RedirectURIs = append(c.RedirectURIs, uri)
	if err := s.Store.PutClient(ctx, c); err != nil {
		t.Fatal(err)
	}
}
