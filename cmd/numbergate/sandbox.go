package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

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
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address (the issuer is http://ADDR)")
	data := fs.String("data", defaultSandboxData, "data directory (SQLite store and "+sandbox.CredentialsFile+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := listen(*addr)
	if err != nil {
		return err
	}
	return runSandboxOn(ctx, ln, *data, newLogger(stderr, slog.LevelInfo), stdout, nil)
}

// runSandboxOn runs the sandbox on a bound listener (tests bind 127.0.0.1:0).
func runSandboxOn(ctx context.Context, ln net.Listener, dataDir string, log *slog.Logger, stdout io.Writer, ready func()) error {
	issuer := "http://" + ln.Addr().String()
	st, err := sqlite.Open(ctx, dataDir)
	if err != nil {
		ln.Close()
		return fmt.Errorf("open the sandbox store in %s: %w", dataDir, err)
	}
	defer st.Close()
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
	go a.collectLoop(ctx, time.Minute)
	fmt.Fprint(stdout, sandbox.QuickStart(issuer, dataDir, string(netid.SandboxDefaultNumber)))
	if ready != nil {
		ready()
	}
	return server.Serve(ctx, log, drainTimeout, server.Listener{Name: "sandbox", Listener: ln, Handler: a.public})
}

func sandboxTokens(st nv.Store) http.Handler { return sandbox.TokenHandler(st, time.Now) }
