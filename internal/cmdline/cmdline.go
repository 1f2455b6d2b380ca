// Package cmdline holds the command-line conventions every numbergate
// command follows, so that a new command gets them by using it:
//
//   - -h, -help and --help print the command's usage on stdout, and the
//     command returns ErrHelp (main exits 0);
//   - a parse error (an unknown flag, a missing value) is returned, not
//     printed, so main reports it once, with a pointer to -h;
//   - flags and positional arguments may be mixed; positional arguments
//     beyond what the command takes are refused.
//
// A command:
//
//	fs := cmdline.New("clients remove", "--config FILE --client-id ID", stdout)
//	path := fs.String("config", "", "configuration `FILE`")
//	if _, err := fs.Parse(args, 0); err != nil {
//		return err
//	}
//
// A group of subcommands uses Subcommand.
package cmdline

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// ErrHelp is returned once help has been printed; it is not a failure.
var ErrHelp = flag.ErrHelp

// FlagSet is a flag.FlagSet with numbergate's usage and parsing rules.
type FlagSet struct {
	*flag.FlagSet
	// Name is the command as typed after "numbergate" ("clients add").
	Name string
	// Synopsis follows the name on the usage line.
	Synopsis string
	// Description, if set, is printed between the usage line and the flags.
	Description string
	// Footer, if set, is printed after the flags (environment variables,
	// pointers to documentation).
	Footer string
	stdout io.Writer
}

// New returns the flag set of `numbergate name`; help goes to stdout.
func New(name, synopsis string, stdout io.Writer) *FlagSet {
	fs := &FlagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), Name: name, Synopsis: synopsis, stdout: stdout}
	fs.SetOutput(io.Discard)
	// The flag package calls Usage on every parse error too; usage is
	// printed by Parse on a request for help only.
	fs.FlagSet.Usage = func() {}
	return fs
}

// PrintUsage writes the usage to stdout.
func (fs *FlagSet) PrintUsage() {
	w := fs.stdout
	if w == nil {
		w = io.Discard
	}
	fmt.Fprintf(w, "usage: numbergate %s %s\n", fs.Name, fs.Synopsis)
	if fs.Description != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(fs.Description, "\n"))
	}
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprint(w, "\nflags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	if fs.Footer != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(fs.Footer, "\n"))
	}
}

// Parse parses args, flags and positional arguments in any order ("--"
// ends the flags), and returns the positional ones. maxArgs is how many
// positional arguments the command takes (-1: any number); more are an
// error. Help returns ErrHelp after printing the usage on stdout.
func (fs *FlagSet) Parse(args []string, maxArgs int) ([]string, error) {
	var positional []string
	for {
		if err := fs.FlagSet.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.PrintUsage()
				return nil, ErrHelp
			}
			return nil, fmt.Errorf("%s: %w (numbergate %s -h lists the flags)", fs.Name, err, fs.Name)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			positional = append(positional, args[1:]...)
			break
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
	if maxArgs >= 0 && len(positional) > maxArgs {
		extra := positional[maxArgs]
		if maxArgs == 0 {
			return nil, fmt.Errorf("%s: unexpected argument %q (it takes only flags; numbergate %s -h)", fs.Name, extra, fs.Name)
		}
		return nil, fmt.Errorf("%s: unexpected argument %q (it takes %d; numbergate %s -h)", fs.Name, extra, maxArgs, fs.Name)
	}
	return positional, nil
}

// IsHelp reports whether arg asks for help.
func IsHelp(arg string) bool {
	switch arg {
	case "help", "-h", "-help", "--help":
		return true
	}
	return false
}

// Subcommand splits the subcommand off the arguments of a command group
// ("clients"). With no subcommand it returns an error; asking for help
// prints usage on stdout and returns ErrHelp; a subcommand not in subs is
// an error naming the valid ones.
func Subcommand(args []string, group, usage string, subs []string, stdout io.Writer) (string, []string, error) {
	if len(args) == 0 {
		return "", nil, fmt.Errorf("%s: a subcommand is required (%s; numbergate %s -h)", group, strings.Join(subs, ", "), group)
	}
	if IsHelp(args[0]) {
		fmt.Fprint(stdout, usage)
		return "", nil, ErrHelp
	}
	for _, s := range subs {
		if args[0] == s {
			return s, args[1:], nil
		}
	}
	return "", nil, fmt.Errorf("%s: unknown subcommand %q (use %s; numbergate %s -h)", group, args[0], strings.Join(subs, ", "), group)
}
