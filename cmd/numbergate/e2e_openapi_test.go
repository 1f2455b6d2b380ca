package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/go-jose/go-jose/v4"

	apidoc "github.com/numbergate/numbergate/api"
	"github.com/numbergate/numbergate/pkg/nvclient"
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

// TestServeLimitedResponsesMatchOpenAPI: the documented 429 answers of the
// API (TOO_MANY_REQUESTS for the per-client rate, QUOTA_EXCEEDED for the
// daily quota), produced by the real `serve` with limits configured,
// validate against the document it publishes (the sandbox has no limits;
// api/openapi_test.go covers the other cases).
func TestServeLimitedResponsesMatchOpenAPI(t *testing.T) {
	n := startServe(t, t.TempDir(), `network:
  static:
    - prefix: 127.0.0.71/32
      msisdn: "+34600000071"
    - prefix: 127.0.0.72/32
      msisdn: "+34600000072"
limits:
  authorize_per_address: 100/m
  token_per_client: 100/m
  api_per_client: 2/h
`)
	resp, err := http.Get(n.issuer + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	doc, err := openapi3.NewLoader().LoadFromData(served)
	if err != nil {
		t.Fatal(err)
	}
	doc.Servers = openapi3.Servers{{URL: n.issuer + "/number-verification/v2"}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	call := func(p *party, token, phone string) (status int, code, retryAfter string) {
		t.Helper()
		body := `{"phoneNumber":"` + phone + `"}`
		req, _ := http.NewRequest("POST", n.issuer+"/number-verification/v2/verify", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := p.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		again, _ := http.NewRequest("POST", req.URL.String(), strings.NewReader(body))
		again.Header = req.Header.Clone()
		route, params, err := router.FindRoute(again)
		if err != nil {
			t.Fatal(err)
		}
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: again, PathParams: params, Route: route},
			Status:                 resp.StatusCode,
			Header:                 resp.Header,
			Options:                &openapi3filter.Options{IncludeResponseStatus: true},
		}
		in.SetBodyBytes(raw)
		if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
			t.Errorf("%d %s does not match the document: %v", resp.StatusCode, raw, err)
		}
		var e struct {
			Code string `json:"code"`
		}
		json.Unmarshal(raw, &e)
		return resp.StatusCode, e.Code, resp.Header.Get("Retry-After")
	}

	// Rate: the third call within the hour (per hour: on a slow machine no
	// budget refills during the test). 2/h is one call per 1800 s, so the
	// 429's Retry-After is at most 1800 (TestServeRetryAfter checks the
	// exact value per second, minute and hour).
	a := onboard(t, n, "rated-app", "127.0.0.71")
	for i, want := range []int{200, 200, 429} {
		status, code, retry := call(a, a.flow(scopeVerify, "").AccessToken, "+34600000071")
		if status != want || (want == 429 && code != "TOO_MANY_REQUESTS") {
			t.Errorf("rated call %d: %d %s, want %d", i+1, status, code, want)
		}
		if s, err := strconv.Atoi(retry); want == 429 && (err != nil || s < 1 || s > 1800) {
			t.Errorf("rated call %d: Retry-After %q, want 1..1800 s under api_per_client 2/h", i+1, retry)
		}
	}

	// Quota: the second call of the day for a client with a quota of one.
	b := onboard(t, n, "quota-app", "127.0.0.72")
	pub, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{b.key.Public()}})
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwks, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"clients", "add", "--replace", "--config", n.cfgPath, "--client-id", "quota-app",
		"--redirect-uri", b.redirect, "--jwks", jwks, "--scope", "openid number-verification:verify",
		"--purpose", "dpv:FraudPreventionAndDetection", "--require-pkce", "--quota-per-day", "1"}, os.Getenv, &out, &errb); err != nil {
		t.Fatalf("clients add --quota-per-day: %v\n%s", err, errb.String())
	}
	for i, want := range []int{200, 429} {
		status, code, _ := call(b, b.flow(scopeVerify, "").AccessToken, "+34600000072")
		if status != want || (want == 429 && code != "QUOTA_EXCEEDED") {
			t.Errorf("quota call %d: %d %s, want %d", i+1, status, code, want)
		}
	}

	// The Go client turns such an answer into a typed error with the
	// server's Retry-After (this third call of the hour meets the rate
	// limit before the quota).
	key, err := nvclient.NewKey(b.key.Key.(*ecdsa.PrivateKey), b.key.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	c, err := nvclient.New(context.Background(), nvclient.Config{Issuer: n.issuer, ClientID: b.clientID, RedirectURI: b.redirect, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Verify(context.Background(), b.flow(scopeVerify, "").AccessToken, nvclient.PhoneNumber("+34600000072"))
	var e *nvclient.Error
	if !errors.As(err, &e) || e.Status != 429 || (e.Code != nvclient.CodeQuotaExceeded && e.Code != nvclient.CodeTooManyRequests) ||
		e.RetryAfter <= 0 || e.Correlator == "" {
		t.Errorf("nvclient over its limits: %v, want a typed 429 with a Retry-After and a correlator", err)
	}
}
