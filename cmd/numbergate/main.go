// Command numbergate is the CAMARA Number Verification server: `serve` for
// operators, `sandbox` for app developers, `clients` and `sessions` for
// operations, `version`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "numbergate:", err)
		}
		os.Exit(2)
	}
}

const usage = `usage: numbergate <command> [flags]

commands:
  serve   --config FILE                 run the server (authorization server, API, network feeds)
  sandbox [--addr ADDR] [--data DIR]    run the offline sandbox for app developers
  clients add|list|remove --config FILE onboard and manage API clients
  sessions list|lookup --config FILE    inspect network sessions (numbers masked unless asked)
  version                               print the version
`

// run is main without the process: tests call it with their own context,
// arguments, environment and output.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("a command is required")
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], getenv, stderr)
	case "sandbox":
		return runSandbox(ctx, args[1:], stdout, stderr)
	case "clients":
		return newCLI().Clients(ctx, args[1:], stdout, stderr)
	case "sessions":
		return newCLI().Sessions(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "numbergate", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
