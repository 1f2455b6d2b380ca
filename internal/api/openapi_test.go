package api

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/numbergate/numbergate/internal/nv"
)

// TestOpenAPIDocument keeps api/openapi.yaml in step with the handler: the
// paths and methods served, every error status and code it lists, and the
// patterns; every $ref must resolve.
func TestOpenAPIDocument(t *testing.T) {
	raw, err := os.ReadFile("../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["openapi"] != "3.0.3" {
		t.Errorf("openapi = %v", doc["openapi"])
	}

	// Every $ref resolves.
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if k == "$ref" {
					if _, ok := lookup(doc, x.(string)); !ok {
						t.Errorf("unresolved $ref %s", x)
					}
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)

	servers := doc["servers"].([]any)
	if url := servers[0].(map[string]any)["url"].(string); !strings.HasSuffix(url, BasePath) {
		t.Errorf("server url %s", url)
	}
	paths := doc["paths"].(map[string]any)
	ops := map[string]string{
		strings.TrimPrefix(VerifyPath, BasePath):            "post",
		strings.TrimPrefix(DevicePhoneNumberPath, BasePath): "get",
	}
	if len(paths) != len(ops) {
		t.Errorf("%d paths documented, %d served", len(paths), len(ops))
	}
	for path, method := range ops {
		item, ok := paths[path].(map[string]any)
		if !ok {
			t.Errorf("path %s not documented", path)
			continue
		}
		if len(item) != 1 || item[method] == nil {
			t.Errorf("path %s: want only %s", path, method)
		}
	}

	// Every response's status and codes agree with the error table.
	responses, _ := lookup(doc, "#/components/responses")
	for name, r := range responses.(map[string]any) {
		schema, ok := dig(r, "content", "application/json", "schema", "allOf")
		if !ok {
			t.Errorf("response %s has no error schema", name)
			continue
		}
		props, _ := dig(schema.([]any)[1], "properties")
		statuses, _ := dig(props, "status", "enum")
		codes, _ := dig(props, "code", "enum")
		status := statuses.([]any)[0].(int)
		for _, c := range codes.([]any) {
			got, ok := StatusFor(nv.Code(c.(string)))
			if !ok || got != status {
				t.Errorf("response %s: code %s documented as %d, served as %d", name, c, status, got)
			}
		}
	}
	for _, op := range []string{"/verify", "/device-phone-number"} {
		rs, _ := dig(paths, op)
		for _, item := range rs.(map[string]any) {
			resp, _ := dig(item, "responses")
			for status, r := range resp.(map[string]any) {
				n, _ := strconv.Atoi(status)
				ref, ok := dig(r, "$ref")
				if n == 200 || !ok {
					continue
				}
				target, _ := lookup(doc, ref.(string))
				props, _ := dig(target, "content", "application/json", "schema", "allOf")
				st, _ := dig(props.([]any)[1], "properties", "status", "enum")
				if st.([]any)[0].(int) != n {
					t.Errorf("%s %s refers to a %v response", op, status, st)
				}
			}
		}
	}

	for name, want := range map[string]string{
		"Correlator":        `^[a-zA-Z0-9-_:;.\/<>{}]{0,256}$`,
		"PhoneNumber":       `^\+[1-9][0-9]{4,14}$`,
		"HashedPhoneNumber": `^[a-fA-F0-9]{64}$`,
	} {
		got, _ := lookup(doc, "#/components/schemas/"+name+"/pattern")
		if got != want {
			t.Errorf("%s pattern = %v, want %s", name, got, want)
		}
	}
	if url, _ := lookup(doc, "#/components/securitySchemes/openId/openIdConnectUrl"); url != "/.well-known/openid-configuration" {
		t.Errorf("openIdConnectUrl = %v", url)
	}
}

func lookup(doc map[string]any, ref string) (any, bool) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, false
	}
	return dig(doc, strings.Split(ref[2:], "/")...)
}

func dig(v any, keys ...string) (any, bool) {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}
