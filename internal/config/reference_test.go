package config

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// referenceDoc is the configuration reference, relative to this package.
const referenceDoc = "../../docs/configuration.md"

// configKeys lists every key of the configuration file as a path
// ("network.radius.clients[].secret"), from the yaml tags of the structs the
// file is decoded into, so the list never drifts from the code. Each key
// comes with the Go field it was found at, for the failure message.
func configKeys(t reflect.Type, prefix string, out map[string]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "-" || !f.IsExported() {
			continue
		}
		if strings.Contains(opts, "inline") {
			configKeys(f.Type, prefix, out)
			continue
		}
		if tag == "" {
			tag = strings.ToLower(f.Name) // yaml.v3's default
		}
		key := prefix + tag
		out[key] = t.Name() + "." + f.Name
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.Struct:
			configKeys(ft, key+".", out)
		case reflect.Slice, reflect.Array:
			configKeys(ft.Elem(), key+"[].", out)
		case reflect.Map:
			configKeys(ft.Elem(), key+".<name>.", out)
		}
	}
}

// documentedKeys returns the keys of the reference's tables: the first cell
// of each row, when it is a key in backticks.
func documentedKeys(doc string) map[string][]string {
	rows := map[string][]string{}
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9_.\\[\\]<>]+)` \\|(.*)\\|\\s*$")
	for _, m := range row.FindAllStringSubmatch(doc, -1) {
		var cells []string
		for _, c := range strings.Split(m[2], "|") {
			cells = append(cells, strings.TrimSpace(c))
		}
		rows[m[1]] = cells
	}
	return rows
}

// TestConfigurationReference fails when a configuration key is not
// described in docs/configuration.md (with its type, default and meaning),
// or when the reference describes a key that no longer exists.
func TestConfigurationReference(t *testing.T) {
	data, err := os.ReadFile(referenceDoc)
	if err != nil {
		t.Fatalf("the configuration reference is missing: %v", err)
	}
	keys := map[string]string{}
	configKeys(reflect.TypeOf(rawConfig{}), "", keys)
	if len(keys) < 20 {
		t.Fatalf("found only %d keys by reflection: %v", len(keys), keys)
	}
	doc := documentedKeys(string(data))

	var names []string
	for k := range keys {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		cells, ok := doc[k]
		if !ok {
			section := "## Top level"
			if top, _, nested := strings.Cut(k, "."); nested {
				section = fmt.Sprintf("## `%s`", strings.TrimSuffix(top, "[]"))
			}
			t.Errorf("docs/configuration.md does not document the key `%s` (yaml tag of %s).\n"+
				"  Add a row to the table under %q (add the section if it is new):\n"+
				"  | `%s` | TYPE | DEFAULT (or required) | MEANING |", k, keys[k], section, k)
			continue
		}
		if len(cells) != 3 || slices.Contains(cells, "") {
			t.Errorf("docs/configuration.md: the row of `%s` must have four filled cells: key, type, default, meaning; it has %q", k, cells)
		}
	}
	for k := range doc {
		if _, ok := keys[k]; !ok {
			t.Errorf("docs/configuration.md documents `%s`, which is not a configuration key (renamed or removed?): update or delete its row", k)
		}
	}
}

// TestConfigurationReferenceEnv: every environment override is documented.
func TestConfigurationReferenceEnv(t *testing.T) {
	data, err := os.ReadFile(referenceDoc)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{EnvListen, EnvAdminListen, EnvDataDir} {
		if !strings.Contains(string(data), "| `"+v+"` |") {
			t.Errorf("docs/configuration.md does not document the environment variable %s (add a row to the table under \"## Environment variables\")", v)
		}
	}
}
