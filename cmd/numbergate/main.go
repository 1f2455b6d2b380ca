// Command numbergate is the CAMARA Number Verification server: `serve` for
// operators, `sandbox` for app developers, `clients` and `sessions` for
// operations, `version`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/numbergate/numbergate/internal/cmdline"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, cmdline.ErrHelp) {
			return // help was printed on stdout
		}
		fmt.Fprintln(os.Stderr, "numbergate:", err)
		os.Exit(2)
	}
}

const usage = `usage: numbergate <command> [flags]

commands:
  serve   --config FILE                 run the server (authorization server, API, network feeds)
  sandbox [--addr ADDR] [--data DIR]    run the offline sandbox for app developers
  try [--client FILE] [--phone +E164]   run the whole flow against a running sandbox, step by step
  clients add|list|remove --config FILE onboard and manage API clients
  sessions list|lookup --config FILE    inspect network sessions (numbers masked unless asked)
  usage --config FILE --from T [--to T] export usage records for billing (CSV or JSON; --summary per client and day)
  migrate --config FILE                 bring the store's schema up to date and exit
  keys rotate|list --config FILE        rotate the signing key (published before use), list keys
  bench flow|verify|radius|mixed|baseline  drive a running server and measure it (docs/PERFORMANCE.md)
  version                               print the version and VCS revision

Run "numbergate <command> -h" for a command's flags.
`

// run is main without the process: tests call it with their own context,
// arguments, environment and output.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("a command is required (numbergate -h)")
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], getenv, stdout, stderr)
	case "sandbox":
		return runSandbox(ctx, args[1:], stdout, stderr)
	case "try":
		return runTry(ctx, args[1:], stdout)
	case "clients":
		return newCLI().Clients(ctx, args[1:], stdout, stderr)
	case "sessions":
		return newCLI().Sessions(ctx, args[1:], stdout, stderr)
	case "usage":
		return newCLI().Usage(ctx, args[1:], stdout, stderr)
	case "migrate":
		return runMigrate(ctx, args[1:], getenv, stdout)
	case "keys":
		return runKeys(ctx, args[1:], getenv, stdout)
	case "bench":
		return runBench(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fs := cmdline.New("version", "", stdout)
		if _, err := fs.Parse(args[1:], 0); err != nil {
			return err
		}
		fmt.Fprintln(stdout, versionLine(debug.ReadBuildInfo()))
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return cmdline.ErrHelp
	}
	return fmt.Errorf("unknown command %q (numbergate -h lists the commands)", args[0])
}

// versionLine is what `numbergate version` prints: the version (the
// -ldflags value, else the module version from the build information), the
// VCS revision and time when the build recorded them, and the Go version.
func versionLine(bi *debug.BuildInfo, ok bool) string {
	v := version
	if !ok {
		return "numbergate " + v
	}
	if v == "dev" && bi.Main.Version != "" {
		v = bi.Main.Version // "v1.2.3" from go install module@version, "(devel)" from a checkout
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	line := "numbergate " + v
	if rev := settings["vcs.revision"]; rev != "" {
		line += " revision " + rev
		if t := settings["vcs.time"]; t != "" {
			line += " (" + t + ")"
		}
		if settings["vcs.modified"] == "true" {
			line += " with local changes"
		}
	} else {
		line += " (no VCS revision recorded: built with -buildvcs=false or outside a checkout)"
	}
	return line + " " + bi.GoVersion
}
