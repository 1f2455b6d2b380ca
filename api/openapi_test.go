package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/numbergate/numbergate/api"
	"github.com/numbergate/numbergate/internal/sandboxtest"
)

// TestServedResponsesMatchOpenAPI: the server publishes its document at
// /openapi.yaml, the document is valid OpenAPI 3, and real responses of
// the running sandbox in every case the document lists (each status and
// error code that can be produced without a fault) validate against it
// with kin-openapi: status, headers, content type and body schema.
func TestServedResponsesMatchOpenAPI(t *testing.T) {
	sb := sandboxtest.Start(t)
	ctx := context.Background()

	resp, err := http.Get(sb.Issuer + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(served, api.OpenAPI) || !strings.Contains(resp.Header.Get("Content-Type"), "yaml") {
		t.Fatalf("/openapi.yaml: %d %s, %d bytes; want the embedded document", resp.StatusCode, resp.Header.Get("Content-Type"), len(served))
	}

	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(served)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("the document is not valid OpenAPI: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: sb.Issuer + "/number-verification/v2"}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}

	mint := func(scope, method string) string {
		body, _ := json.Marshal(map[string]any{"phoneNumber": "+34600000001", "scope": scope, "authMethod": method})
		resp, err := http.Post(sb.Issuer+"/sandbox/tokens", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tr struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || tr.AccessToken == "" {
			t.Fatalf("sandbox token: %d %v", resp.StatusCode, err)
		}
		return tr.AccessToken
	}
	const (
		verify = "number-verification:verify"
		read   = "number-verification:device-phone-number:read"
	)
	spent := mint(verify, "network")
	type call struct {
		name       string
		method     string
		path       string
		token      string
		body       string
		ctype      string
		correlator string
		status     int
		code       string
	}
	calls := []call{
		{name: "verify: match", method: "POST", path: "/verify", token: mint(verify, "network"), body: `{"phoneNumber":"+34600000001"}`, status: 200},
		{name: "verify: no match", method: "POST", path: "/verify", token: mint(verify, "network"), body: `{"phoneNumber":"+34600000002"}`, status: 200},
		{name: "verify: hashed", method: "POST", path: "/verify", token: mint(verify, "network"), body: `{"hashedPhoneNumber":"b49f9168e8a886ffd61a090b51a26e117717f5f6fa804af49ea67043a2bfa4f0"}`, status: 200},
		{name: "verify: with x-correlator", method: "POST", path: "/verify", token: mint(verify, "network"), body: `{"phoneNumber":"+34600000001"}`, correlator: "abc-123", status: 200},
		{name: "verify: first use", method: "POST", path: "/verify", token: spent, body: `{"phoneNumber":"+34600000001"}`, status: 200},
		{name: "verify: both fields", method: "POST", path: "/verify", token: mint(verify, "network"), body: `{"phoneNumber":"+34600000001","hashedPhoneNumber":"b49f9168e8a886ffd61a090b51a26e117717f5f6fa804af49ea67043a2bfa4f0"}`, status: 400, code: "INVALID_ARGUMENT"},
		{name: "verify: empty object", method: "POST", path: "/verify", token: mint(verify, "network"), body: `{}`, status: 400, code: "INVALID_ARGUMENT"},
		{name: "verify: bad x-correlator", method: "POST", path: "/verify", token: mint(verify, "network"), body: `{"phoneNumber":"+34600000001"}`, correlator: "bad correlator!", status: 400, code: "INVALID_ARGUMENT"},
		{name: "verify: no token", method: "POST", path: "/verify", body: `{"phoneNumber":"+34600000001"}`, status: 401, code: "UNAUTHENTICATED"},
		{name: "verify: token already used", method: "POST", path: "/verify", token: spent, body: `{"phoneNumber":"+34600000001"}`, status: 401, code: "UNAUTHENTICATED"},
		{name: "verify: expired token", method: "POST", path: "/verify", token: mintExpired(t, sb.Issuer), body: `{"phoneNumber":"+34600000001"}`, status: 401, code: "UNAUTHENTICATED"},
		{name: "verify: wrong scope", method: "POST", path: "/verify", token: mint(read, "network"), body: `{"phoneNumber":"+34600000001"}`, status: 403, code: "PERMISSION_DENIED"},
		{name: "verify: not network-authenticated", method: "POST", path: "/verify", token: mint(verify, "sms-otp"), body: `{"phoneNumber":"+34600000001"}`, status: 403, code: "NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK"},
		{name: "verify: not JSON", method: "POST", path: "/verify", token: mint(verify, "network"), body: `phoneNumber=+34600000001`, ctype: "application/x-www-form-urlencoded", status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},
		{name: "device number", method: "GET", path: "/device-phone-number", token: mint(read, "network"), status: 200},
		{name: "device number: bad x-correlator", method: "GET", path: "/device-phone-number", token: mint(read, "network"), correlator: strings.Repeat("x", 257), status: 400, code: "INVALID_ARGUMENT"},
		{name: "device number: no token", method: "GET", path: "/device-phone-number", status: 401, code: "UNAUTHENTICATED"},
		{name: "device number: wrong scope", method: "GET", path: "/device-phone-number", token: mint(verify, "network"), status: 403, code: "PERMISSION_DENIED"},
		{name: "device number: not network-authenticated", method: "GET", path: "/device-phone-number", token: mint(read, "sms-otp"), status: 403, code: "NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK"},
	}
	seen := map[string]bool{}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			var rd io.Reader
			if c.body != "" {
				rd = strings.NewReader(c.body)
			}
			req, _ := http.NewRequest(c.method, sb.Issuer+"/number-verification/v2"+c.path, rd)
			if c.body != "" {
				ct := c.ctype
				if ct == "" {
					ct = "application/json"
				}
				req.Header.Set("Content-Type", ct)
			}
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			if c.correlator != "" {
				req.Header.Set("x-correlator", c.correlator)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if c.code != "" && !strings.Contains(string(body), `"code":"`+c.code+`"`) {
				t.Errorf("body %s, want code %s", body, c.code)
			}
			validate(t, router, req, c.body, resp, body)
			seen[c.method+" "+c.path+" "+resp.Status[:3]] = true
		})
	}

	// A store outage (the sandbox's store closed under it): 503 UNAVAILABLE.
	down := sandboxtest.Start(t)
	down.Store.Close()
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/verify", `{"phoneNumber":"+34600000001"}`},
		{"GET", "/device-phone-number", ""},
	} {
		var rd io.Reader
		if c.body != "" {
			rd = strings.NewReader(c.body)
		}
		req, _ := http.NewRequest(c.method, down.Issuer+"/number-verification/v2"+c.path, rd)
		req.Header.Set("Authorization", "Bearer "+strings.Repeat("A", 43))
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 || !strings.Contains(string(body), `"code":"UNAVAILABLE"`) {
			t.Errorf("%s %s with the store down: %d %s, want 503 UNAVAILABLE", c.method, c.path, resp.StatusCode, body)
		}
		// Validate against the document's route (the server URL is the
		// first sandbox's; only the path matters).
		req.URL, _ = url.Parse(sb.Issuer + "/number-verification/v2" + c.path)
		validate(t, router, req, c.body, resp, body)
		seen[c.method+" "+c.path+" 503"] = true
	}

	// Every status the document lists was produced, except 429 (a
	// configured limit: TestServeLimitedResponsesMatchOpenAPI in
	// cmd/numbergate validates it on serve) and 500 (a server bug).
	faults := map[string]bool{"429": true, "500": true}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status := range op.Responses.Map() {
				if !faults[status] && !seen[method+" "+path+" "+status] {
					t.Errorf("%s %s %s is documented but no test call produced it", method, path, status)
				}
			}
		}
	}

	// 404 and 405 are documented in the description with the Error schema.
	for _, c := range []struct{ method, path string }{{"GET", "/nope"}, {"GET", "/verify"}, {"DELETE", "/device-phone-number"}} {
		req, _ := http.NewRequest(c.method, sb.Issuer+"/number-verification/v2"+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Errorf("%s %s: %d body is not JSON: %s", c.method, c.path, resp.StatusCode, body)
			continue
		}
		if err := doc.Components.Schemas["Error"].Value.VisitJSON(v); err != nil {
			t.Errorf("%s %s: %d body does not match the Error schema: %v", c.method, c.path, resp.StatusCode, err)
		}
		if resp.StatusCode != 404 && resp.StatusCode != 405 {
			t.Errorf("%s %s: %d, want 404 or 405", c.method, c.path, resp.StatusCode)
		}
	}
}

// validate checks a real response against the document: the route's
// status (or a documented error), headers, content type and body schema.
func validate(t *testing.T, router routers.Router, req *http.Request, reqBody string, resp *http.Response, body []byte) {
	t.Helper()
	again, _ := http.NewRequest(req.Method, req.URL.String(), strings.NewReader(reqBody))
	again.Header = req.Header.Clone()
	route, params, err := router.FindRoute(again)
	if err != nil {
		t.Fatalf("no documented route for %s %s: %v", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: again, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s -> %d %s: does not match the document: %v", req.Method, req.URL.Path, resp.StatusCode, body, err)
	}
}

func mintExpired(t *testing.T, issuer string) string {
	t.Helper()
	resp, err := http.Post(issuer+"/sandbox/tokens", "application/json",
		strings.NewReader(`{"phoneNumber":"+34600000001","scope":"number-verification:verify","expiresIn":0}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("expired sandbox token: %d %v", resp.StatusCode, err)
	}
	return tr.AccessToken
}
