package cmdline

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	var out bytes.Buffer
	fs := New("things add", "--name NAME [ARG]", &out)
	fs.Footer = "environment: NUMBERGATE_X"
	name := fs.String("name", "", "the `NAME`")

	rest, err := fs.Parse([]string{"a", "--name", "n", "--", "-b"}, -1)
	if err != nil || *name != "n" || strings.Join(rest, ",") != "a,-b" {
		t.Fatalf("interleaved: %v %q %v", err, *name, rest)
	}
	if out.Len() != 0 {
		t.Fatalf("parsing printed %q", out.String())
	}
	if _, err := fs.Parse([]string{"a", "b"}, 1); err == nil || !strings.Contains(err.Error(), `unexpected argument "b"`) {
		t.Errorf("too many arguments: %v", err)
	}
	if _, err := fs.Parse([]string{"a"}, 0); err == nil || !strings.Contains(err.Error(), "takes only flags") {
		t.Errorf("no arguments allowed: %v", err)
	}
	if _, err := fs.Parse([]string{"--bogus"}, 0); err == nil || !strings.Contains(err.Error(), "-bogus") || out.Len() != 0 {
		t.Errorf("unknown flag: %v, printed %q", err, out.String())
	}
	for _, h := range []string{"-h", "-help", "--help"} {
		out.Reset()
		if _, err := fs.Parse([]string{h}, 0); !errors.Is(err, ErrHelp) {
			t.Errorf("%s: %v", h, err)
		}
		for _, want := range []string{"usage: numbergate things add --name NAME [ARG]", "-name NAME", "environment: NUMBERGATE_X"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: usage lacks %q:\n%s", h, want, out.String())
			}
		}
	}
}

func TestSubcommand(t *testing.T) {
	var out bytes.Buffer
	subs := []string{"add", "list"}
	if s, rest, err := Subcommand([]string{"add", "-x"}, "things", "U\n", subs, &out); err != nil || s != "add" || len(rest) != 1 {
		t.Errorf("add: %q %v %v", s, rest, err)
	}
	if _, _, err := Subcommand(nil, "things", "U\n", subs, &out); err == nil || !strings.Contains(err.Error(), "add, list") {
		t.Errorf("none: %v", err)
	}
	if _, _, err := Subcommand([]string{"zap"}, "things", "U\n", subs, &out); err == nil || !strings.Contains(err.Error(), `"zap"`) {
		t.Errorf("unknown: %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("errors printed %q", out.String())
	}
	if _, _, err := Subcommand([]string{"--help"}, "things", "U\n", subs, &out); !errors.Is(err, ErrHelp) || out.String() != "U\n" {
		t.Errorf("help: %v %q", err, out.String())
	}
}
