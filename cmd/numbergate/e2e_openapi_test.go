package main

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	apidoc "github.com/numbergate/numbergate/api"
)

// TestOpenAPIServed: both `serve` and `sandbox` publish the API's OpenAPI
// document at /openapi.yaml (api/openapi_test.go validates real responses
// against it).
func TestOpenAPIServed(t *testing.T) {
	n := startServe(t, t.TempDir(), "")
	p := startSandbox(t, t.TempDir())
	for name, issuer := range map[string]string{"serve": n.issuer, "sandbox": p.issuer} {
		resp, err := http.Get(issuer + "/openapi.yaml")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/yaml" || !bytes.Equal(body, apidoc.OpenAPI) {
			t.Errorf("%s /openapi.yaml: %d %s, %d bytes", name, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
	}
}
