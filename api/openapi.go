// Package api holds numbergate's OpenAPI document for the Number
// Verification v2 API (openapi.yaml beside this file), embedded so that
// the server publishes the document it implements at /openapi.yaml.
package api

import _ "embed"

// OpenAPI is api/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
