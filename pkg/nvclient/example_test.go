package nvclient_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"testing"

	"github.com/numbergate/numbergate/internal/sandboxtest"
	"github.com/numbergate/numbergate/pkg/nvclient"
)

// TestMain runs a real sandbox with its data in ./sandbox-data of a
// temporary working directory, where `numbergate sandbox` would put it, so
// the examples read like an app run beside the sandbox.
func TestMain(m *testing.M) {
	os.Exit(runWithSandbox(m))
}

func runWithSandbox(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	tmp, err := os.MkdirTemp("", "nvclient-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chdir(tmp); err != nil {
		panic(err)
	}
	defer os.Chdir(wd)
	sb, err := sandboxtest.Run("sandbox-data")
	if err != nil {
		panic(err)
	}
	defer sb.Close()
	return m.Run()
}

// openOnDevice stands for the user's browser: it opens the authorization
// URL (the sandbox recognises the device from the login_hint) and returns
// the query of the redirect back to the app.
func openOnDevice(authURL string) url.Values {
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(authURL)
	if err != nil {
		return nil
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc == nil {
		return nil
	}
	return loc.Query()
}

// The whole flow against a sandbox started with `numbergate sandbox` in the
// current directory.
func Example() {
	ctx := context.Background()
	cfg, err := nvclient.ReadCredentials("sandbox-data/sandbox-client.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	client, err := nvclient.New(ctx, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}

	// 1. On "Verify": keep p in the user's session, redirect the browser to p.AuthURL.
	p, err := client.AuthorizationURL(nvclient.AuthRequest{
		Purpose:   "FraudPreventionAndDetection",
		LoginHint: "tel:+34600000001", // the sandbox's simulated device
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	callback := openOnDevice(p.AuthURL)

	// 2. At the redirect URI: check state, exchange the code.
	tok, err := client.Callback(ctx, p, callback)
	if err != nil {
		fmt.Println(err)
		return
	}

	// 3. Ask about the number the user typed.
	res, err := client.Verify(ctx, tok.AccessToken, nvclient.PhoneNumber("+34600000001"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("verified:", res.Verified)
	// Output: verified: true
}

// The number can be sent only as its SHA-256: HashOf hashes it here.
func ExampleHashOf() {
	ctx := context.Background()
	cfg, _ := nvclient.ReadCredentials("sandbox-data/sandbox-client.json")
	client, err := nvclient.New(ctx, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	p, _ := client.AuthorizationURL(nvclient.AuthRequest{Purpose: "FraudPreventionAndDetection", LoginHint: "tel:+34600000001"})
	tok, err := client.Callback(ctx, p, openOnDevice(p.AuthURL))
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := client.Verify(ctx, tok.AccessToken, nvclient.HashOf("+34600000002"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("verified:", res.Verified)
	// Output: verified: false
}

// A device the network does not recognise (in the sandbox: a +999 number)
// comes back with access_denied, as a typed error.
func ExampleError() {
	ctx := context.Background()
	cfg, _ := nvclient.ReadCredentials("sandbox-data/sandbox-client.json")
	client, err := nvclient.New(ctx, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	p, _ := client.AuthorizationURL(nvclient.AuthRequest{Purpose: "FraudPreventionAndDetection", LoginHint: "tel:+99900000000"})
	_, err = client.Callback(ctx, p, openOnDevice(p.AuthURL))

	var e *nvclient.Error
	switch {
	case errors.As(err, &e) && e.Code == nvclient.CodeAccessDenied:
		fmt.Println("not on the mobile network: ask the user to switch off Wi-Fi, or fall back to an SMS code")
	case errors.Is(err, nvclient.ErrStateMismatch):
		fmt.Println("forged or stale callback")
	case err != nil:
		fmt.Println("error:", err)
	}
	// Output: not on the mobile network: ask the user to switch off Wi-Fi, or fall back to an SMS code
}

// Keys come from a JWK or PEM file; PublicJWKS is what the operator
// registers with `numbergate clients add --jwks`.
func ExampleParseKey() {
	key, err := nvclient.ParseKey([]byte(`-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIGEU0VNcJ3mK1BB2LMrIYHPiQzrXwbSSWBRtW6SFvvTb
-----END PRIVATE KEY-----`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(key.Algorithm())
	// Output: EdDSA
}
