package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/numbergate/numbergate/internal/config"
)

// TestReadmeGoVersion: the Go version the README asks for is go.mod's, so a
// fresh machine with that toolchain builds without fetching another.
func TestReadmeGoVersion(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	want := "Go " + string(m[1]) + " or later"
	if !strings.Contains(string(readme), want) {
		t.Errorf("README.md does not say %q (go.mod's go line); update one or the other", want)
	}
	if regexp.MustCompile(`(?m)^toolchain `).Match(mod) {
		t.Error("go.mod has a toolchain line: a machine with an older 1.26 would try to download it")
	}
}

// TestReadmeConfigExamples: every configuration the README shows (YAML
// blocks and files written by its shell examples) is accepted as written.
func TestReadmeConfigExamples(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var examples []string
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		examples = append(examples, m[1])
	}
	for _, m := range regexp.MustCompile("(?s)cat > \\S+\\.yaml <<'EOF'\n(.*?)\nEOF\n").FindAllStringSubmatch(string(readme), -1) {
		examples = append(examples, m[1])
	}
	if len(examples) < 3 {
		t.Fatalf("found %d configuration examples in the README", len(examples))
	}
	for _, ex := range examples {
		if !strings.HasPrefix(ex, "listen:") {
			continue // a fragment (one section), not a whole file
		}
		if _, err := config.Parse([]byte(ex)); err != nil {
			t.Errorf("README example refused: %v\n%s", err, ex)
		}
	}
}
