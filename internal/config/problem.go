package config

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a configuration: where it is (the YAML
// path, and the line when known) and what is wrong.
type Problem struct {
	// Path is the YAML path, such as "network.static[1].msisdn", or the
	// environment variable, such as "$NUMBERGATE_LISTEN".
	Path string
	// Line is the 1-based line in the file, 0 when unknown (a missing key).
	Line    int
	Message string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error lists every problem found in a configuration, each on its own line.
// Load and Parse return it (as *Error) for anything wrong with the file.
type Error struct {
	// File is the configuration file ("" when parsed from bytes).
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("invalid configuration")
	if e.File != "" {
		b.WriteString(" ")
		b.WriteString(e.File)
	}
	if len(e.Problems) == 1 {
		b.WriteString(": ")
		b.WriteString(e.Problems[0].String())
		return b.String()
	}
	fmt.Fprintf(&b, " (%d problems):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// problems collects problems while a configuration is checked.
type problems struct {
	list  []Problem
	lines map[string]int // YAML path -> line
}

func (ps *problems) add(path, format string, args ...any) {
	ps.list = append(ps.list, Problem{Path: path, Line: ps.line(path), Message: fmt.Sprintf(format, args...)})
}

// line finds the line of path, or of its nearest parent that is in the
// file (a missing key is reported where its mapping is).
func (ps *problems) line(path string) int {
	for path != "" {
		if l, ok := ps.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
	return 0
}
