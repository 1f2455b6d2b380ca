package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/numbergate/numbergate/internal/config"
)

// TestNetworkSourcesRegistry checks the one registry of network sources
// against the config's default order and the README's table of sources
// (issue 10 item 2): a source added, renamed or reordered in one place and
// not the others fails here.
func TestNetworkSourcesRegistry(t *testing.T) {
	var names, sections []string
	for _, s := range networkSources {
		if s.name == "" || s.section == "" || s.resolver == nil {
			t.Errorf("incomplete registry entry %+v", s)
		}
		names = append(names, s.name)
		sections = append(sections, s.section)
	}
	if !slices.Equal(names, config.DefaultOrder) {
		t.Errorf("registry order %v, config.DefaultOrder %v", names, config.DefaultOrder)
	}

	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows [][2]string
	in := false
	for _, line := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(line, "| source | config section |") {
			in = true
			continue
		}
		if !in || strings.HasPrefix(line, "|---") {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			t.Fatalf("README sources table row %q", line)
		}
		rows = append(rows, [2]string{strings.Trim(strings.TrimSpace(cells[1]), "`"), strings.Trim(strings.TrimSpace(cells[2]), "`")})
	}
	if len(rows) == 0 {
		t.Fatal("README.md has no table of network sources (| source | config section | ...)")
	}
	var want [][2]string
	for i := range names {
		want = append(want, [2]string{names[i], sections[i]})
	}
	if !slices.Equal(rows, want) {
		t.Errorf("README's table of sources %v, registry %v", rows, want)
	}
}
