package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/numbergate/numbergate/internal/cmdline"
	"github.com/numbergate/numbergate/internal/config"
	"github.com/numbergate/numbergate/internal/netid"
	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/sandbox"
	"github.com/numbergate/numbergate/internal/server"
	"github.com/numbergate/numbergate/internal/sqlite"
)

// defaultSandboxData is where the sandbox keeps its store and the demo
// client's credentials when --data is not given.
const defaultSandboxData = "sandbox-data"

func runSandbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cmdline.New("sandbox", "[--addr ADDR] [--data DIR] [--issuer URL]", stdout)
	fs.Description = "Runs the whole Number Verification flow offline for app developers: a demo\nclient, device numbers simulated with login_hint=tel:+E164, test tokens."
	addr := fs.String("addr", "127.0.0.1:8080", "listen address (the issuer is http://ADDR; on all interfaces, http://127.0.0.1:PORT)")
	issuerFlag := fs.String("issuer", "", "the issuer URL apps and devices use, when ADDR is not how they reach the sandbox (a phone, a container)")
	data := fs.String("data", defaultSandboxData, "data directory (SQLite store and "+sandbox.CredentialsFile+")")
	if _, err := fs.Parse(args, 0); err != nil {
		return err
	}
	if *issuerFlag != "" {
		if err := config.CheckIssuer(*issuerFlag); err != nil {
			return fmt.Errorf("--issuer: %w", err)
		}
	}
	fmt.Fprintf(stdout, "numbergate sandbox: starting on %s (store in %s)\n", *addr, *data)
	ln, err := listen(*addr)
	if err != nil {
		return err
	}
	issuer := *issuerFlag
	if issuer == "" {
		issuer = sandboxIssuer(*addr, ln.Addr())
	}
	return runSandboxOn(ctx, ln, issuer, *data, newLogger(stderr, slog.LevelInfo), stdout, nil)
}

// sandboxIssuer is the issuer for a sandbox listening on typed (as the user
// wrote it) and bound to bound: the host as typed (so "localhost" stays
// localhost) with the bound port; a loopback address in place of an
// unspecified one (":8081", "0.0.0.0:8081", "[::]:8081"), which no client
// can reach or name in an assertion's aud.
func sandboxIssuer(typed string, bound net.Addr) string {
	port := "0"
	if _, p, err := net.SplitHostPort(bound.String()); err == nil {
		port = p
	}
	host, _, err := net.SplitHostPort(typed)
	if err != nil {
		host = ""
	}
	if a, err := netip.ParseAddr(host); host == "" || err == nil && a.IsUnspecified() {
		host = "127.0.0.1"
		if err == nil && a.Is6() {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

// runSandboxOn runs the sandbox on a bound listener (tests bind 127.0.0.1:0).
func runSandboxOn(ctx context.Context, ln net.Listener, issuer, dataDir string, log *slog.Logger, stdout io.Writer, ready func()) error {
	st, err := sqlite.Open(ctx, dataDir)
	if err != nil {
		ln.Close()
		return fmt.Errorf("open the sandbox store in %s: %w", dataDir, err)
	}
	defer st.Close()
	warnTightened(log, st)
	if _, err := sandbox.EnsureDemoClient(ctx, st, dataDir, issuer); err != nil {
		ln.Close()
		return err
	}
	a, err := newApp(ctx, appConfig{
		issuer:   issuer,
		store:    st,
		resolver: netid.NewChain(log, netid.NewSandbox()),
		sandbox:  true,
		log:      log,
	})
	if err != nil {
		ln.Close()
		return err
	}
	// The store collector is stopped and waited for before the store closes.
	ctx, cancel := context.WithCancel(ctx)
	var bg errgroup.Group
	defer bg.Wait()
	defer cancel()
	bg.Go(func() error { a.collectLoop(ctx, time.Minute); return nil })
	fmt.Fprint(stdout, sandbox.QuickStart(issuer, dataDir, string(netid.SandboxDefaultNumber)))
	if ready != nil {
		ready()
	}
	return server.Serve(ctx, log, drainTimeout, server.Listener{Name: "sandbox", Listener: ln, Handler: a.public})
}

// warnTightened logs each file of the data directory whose permissions the
// store restricted to its owner when it opened.
func warnTightened(log *slog.Logger, st *sqlite.Store) {
	for _, change := range st.Tightened() {
		log.Warn("data directory file was accessible to other users: restricted to its owner", "change", change)
	}
}

func sandboxTokens(st nv.Store) http.Handler { return sandbox.TokenHandler(st, time.Now) }
