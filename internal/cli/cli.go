// Package cli owns numbergate's operator commands: `clients add|list|remove`
// (onboarding API consumers) and `sessions list|lookup` (inspecting the
// network sessions learnt from RADIUS accounting and CGNAT logs). They read
// the same configuration file as `numbergate serve` and work on the same
// store; main wires the store in through an Opener.
//
// Numbers are masked in output unless --show-numbers is given, and errors
// never carry a secret.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/numbergate/numbergate/internal/cmdline"
	"github.com/numbergate/numbergate/internal/config"
	"github.com/numbergate/numbergate/internal/nv"
)

// Opener opens the store the configuration names (SQLite in data_dir, or
// PostgreSQL); main supplies it.
type Opener func(ctx context.Context, cfg *config.Config) (nv.Store, error)

// CLI runs the operator commands.
type CLI struct {
	// Open opens the store named by the configuration.
	Open Opener
	// Getenv supplies the environment overrides of the configuration
	// (config.LoadEnv); New sets os.Getenv.
	Getenv func(string) string
	// Now is the clock (CreatedAt of new clients, default of --at); New
	// sets time.Now.
	Now func() time.Time
	// Resolver builds the network identity chain `serve` would use for cfg
	// over st, so that `sessions lookup` shows what the server would answer
	// and from which source (main sets it; `sessions lookup` needs it).
	Resolver func(ctx context.Context, cfg *config.Config, st nv.Store) (nv.Resolver, error)
}

// New returns a CLI opening stores with open.
func New(open Opener) *CLI {
	return &CLI{Open: open, Getenv: os.Getenv, Now: time.Now}
}

func (c *CLI) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

// openStore loads the configuration at path and opens its store.
func (c *CLI) openStore(ctx context.Context, path string) (*config.Config, nv.Store, error) {
	cfg, err := config.LoadEnv(path, c.Getenv)
	if err != nil {
		return nil, nil, err
	}
	if c.Open == nil {
		return nil, nil, errors.New("no store opener configured")
	}
	st, err := c.Open(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the store: %w", err)
	}
	return cfg, st, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, " ") }
func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// newFlagSet returns the flag set of `numbergate name` (cmdline's
// conventions: help on stdout, parse errors returned for main to print
// once). name is the command ("clients add"), synopsis its arguments.
func newFlagSet(name, synopsis string, stdout io.Writer) *cmdline.FlagSet {
	return cmdline.New(name, synopsis, stdout)
}

// parseFlags parses args allowing flags and positional arguments in any
// order, and returns the positional ones. A request for help returns
// flag.ErrHelp.
func parseFlags(fs *cmdline.FlagSet, args []string) ([]string, error) {
	return fs.Parse(args, -1)
}

// subcommand splits off the subcommand name; help prints usage on stdout
// and returns flag.ErrHelp.
func subcommand(args []string, group, usage string, stdout io.Writer) (string, []string, error) {
	if len(args) == 0 {
		return "", nil, fmt.Errorf("%s: a subcommand is required (numbergate %s -h)", group, group)
	}
	if cmdline.IsHelp(args[0]) {
		fmt.Fprint(stdout, usage)
		return "", nil, flag.ErrHelp
	}
	return args[0], args[1:], nil
}

// problemsError joins problems into one error, each on its own line.
func problemsError(heading string, problems []string) error {
	if len(problems) == 1 {
		return fmt.Errorf("%s: %s", heading, problems[0])
	}
	return fmt.Errorf("%s (%d problems):\n  %s", heading, len(problems), strings.Join(problems, "\n  "))
}

func warn(stderr io.Writer, format string, args ...any) {
	fmt.Fprintf(stderr, "warning: "+format+"\n", args...)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
