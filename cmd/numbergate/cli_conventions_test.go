package main

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/numbergate/numbergate/internal/cmdline"
)

// commandsFromUsage lists every command and subcommand the top-level usage
// names ("clients add|list|remove" gives three), so a new command is held
// to the conventions as soon as it is listed.
func commandsFromUsage(t *testing.T) [][]string {
	t.Helper()
	_, body, ok := strings.Cut(usage, "commands:\n")
	if !ok {
		t.Fatal("usage has no commands: section")
	}
	var cmds [][]string
	for _, line := range strings.Split(body, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(line, "  ") {
			break
		}
		cmds = append(cmds, []string{f[0]})
		if len(f) > 1 && regexp.MustCompile(`^[a-z]+(\|[a-z]+)+$`).MatchString(f[1]) {
			for _, sub := range strings.Split(f[1], "|") {
				cmds = append(cmds, []string{f[0], sub})
			}
		}
	}
	if len(cmds) < 5 {
		t.Fatalf("found only %v in the usage", cmds)
	}
	return cmds
}

func runQuick(args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), answerWait)
	defer cancel()
	var o, e bytes.Buffer
	err = run(ctx, args, func(string) string { return "" }, &o, &e)
	return o.String(), e.String(), err
}

// TestCLIConventions: every command and subcommand answers -h and --help
// with its usage on stdout (exit 0 in main), reports an unknown flag once
// (returned, nothing printed), and refuses extra arguments.
func TestCLIConventions(t *testing.T) {
	for _, cmd := range commandsFromUsage(t) {
		name := strings.Join(cmd, " ")
		for _, h := range []string{"-h", "--help"} {
			stdout, stderr, err := runQuick(append(append([]string{}, cmd...), h)...)
			if !errors.Is(err, cmdline.ErrHelp) {
				t.Errorf("numbergate %s %s: returned %v, want ErrHelp (exit 0); use internal/cmdline", name, h, err)
			}
			if !strings.Contains(stdout, "usage: numbergate "+name) || stderr != "" {
				t.Errorf("numbergate %s %s: usage must be on stdout only\nstdout: %s\nstderr: %s", name, h, stdout, stderr)
			}
		}
		if len(cmd) == 1 && (name == "clients" || name == "sessions") {
			continue // groups: the flag goes to a subcommand
		}
		stdout, stderr, err := runQuick(append(append([]string{}, cmd...), "--no-such-flag")...)
		if err == nil || !strings.Contains(err.Error(), "no-such-flag") || stdout != "" || stderr != "" {
			t.Errorf("numbergate %s --no-such-flag: want one returned error and no output; err %v\nstdout: %s\nstderr: %s", name, err, stdout, stderr)
		}
	}

	for _, args := range [][]string{
		{"serve", "--config", "x.yaml", "extra"},
		{"sandbox", "extra"},
		{"version", "extra"},
		{"clients", "list", "--config", "x.yaml", "extra"},
		{"sessions", "lookup", "--config", "x.yaml", "10.0.0.1", "extra"},
	} {
		if _, _, err := runQuick(args...); err == nil || !strings.Contains(err.Error(), `"extra"`) && !strings.Contains(err.Error(), "exactly one") {
			t.Errorf("numbergate %s: extra argument not refused: %v", strings.Join(args, " "), err)
		}
	}

	stdout, _, _ := runQuick("serve", "-h")
	for _, want := range []string{"NUMBERGATE_LISTEN", "NUMBERGATE_ADMIN_LISTEN", "NUMBERGATE_DATA_DIR", "docs/configuration.md", "-config FILE"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("serve -h does not mention %s:\n%s", want, stdout)
		}
	}
	if _, _, err := runQuick("serve"); err == nil || !strings.Contains(err.Error(), "docs/configuration.md") {
		t.Errorf("serve without --config should point to docs/configuration.md: %v", err)
	}
	if stdout, _, err := runQuick("help"); !errors.Is(err, cmdline.ErrHelp) || !strings.Contains(stdout, "commands:") {
		t.Errorf("help: %v %s", err, stdout)
	}
	if _, _, err := runQuick("frobnicate"); err == nil || !strings.Contains(err.Error(), `"frobnicate"`) {
		t.Errorf("unknown command: %v", err)
	}
}

func TestVersion(t *testing.T) {
	stdout, stderr, err := runQuick("version")
	if err != nil || stderr != "" || !strings.HasPrefix(stdout, "numbergate ") || !strings.Contains(stdout, "go1.") {
		t.Fatalf("version: %v %q %q", err, stdout, stderr)
	}
}
