package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/numbergate/numbergate/internal/cmdline"
	"github.com/numbergate/numbergate/internal/sandbox"
	"github.com/numbergate/numbergate/pkg/nvclient"
)

// errNotVerified makes `numbergate try` exit non-zero when the flow ran
// but the number is not the device's.
var errNotVerified = errors.New("not verified")

// runTry plays the app and the device against a running sandbox, printing
// each protocol step: discovery, /authorize and its redirect, /token, the
// ID token's claims, /verify and its answer.
func runTry(ctx context.Context, args []string, stdout io.Writer) error {
	fs := cmdline.New("try", "[--client DIR/sandbox-client.json] [--phone +E164] [--device +E164] [--hashed] [--signed]", stdout)
	fs.Description = "Runs the whole Number Verification flow against a running sandbox, as an app\nand a device would, and prints each step. Exit status 0 only when the number\nis verified."
	client := fs.String("client", filepath.Join(defaultSandboxData, sandbox.CredentialsFile), "the sandbox's client credentials")
	phone := fs.String("phone", "+34600000001", "the number to verify (E.164)")
	device := fs.String("device", "", "the simulated device's number, sent as login_hint=tel:... (default: --phone; +999... simulates a device the network does not recognise)")
	hashed := fs.Bool("hashed", false, "send only the SHA-256 of the number (hashedPhoneNumber)")
	signed := fs.Bool("signed", false, "send the authorization request as a signed request object")
	if _, err := fs.Parse(args, 0); err != nil {
		return err
	}
	if *device == "" {
		*device = *phone
	}
	hash, err := nvclient.HashPhoneNumber(*phone)
	if err != nil {
		return fmt.Errorf("try: --phone: %w", err)
	}
	cfg, err := nvclient.ReadCredentials(*client)
	if err != nil {
		return fmt.Errorf("try: %w (start `numbergate sandbox` first, or point --client at its sandbox-client.json)", err)
	}
	out := &stepWriter{w: stdout}

	out.step("1. discovery", "GET %s/.well-known/openid-configuration", cfg.Issuer)
	c, err := nvclient.New(ctx, cfg)
	if err != nil {
		return fmt.Errorf("try: %w (is the sandbox running at %s?)", err, cfg.Issuer)
	}
	d := c.Discovery()
	out.line("authorization_endpoint %s", d.AuthorizationEndpoint)
	out.line("token_endpoint         %s", d.TokenEndpoint)

	p, err := c.AuthorizationURL(nvclient.AuthRequest{
		Purpose:       "FraudPreventionAndDetection",
		LoginHint:     "tel:" + *device,
		SignedRequest: *signed,
	})
	if err != nil {
		return fmt.Errorf("try: %w", err)
	}
	out.step("2. authorize", "the device opens (login_hint=tel:%s simulates its mobile network identity):", *device)
	out.line("%s", p.AuthURL)
	callback, err := openAsDevice(ctx, p.AuthURL, out)
	if err != nil {
		return fmt.Errorf("try: %w", err)
	}

	out.step("3. token", "POST %s  (grant_type=authorization_code, code_verifier, private_key_jwt %s kid %s)", d.TokenEndpoint, cfg.Key.Algorithm(), cfg.Key.KeyID())
	tok, err := c.Callback(ctx, p, callback)
	if err != nil {
		out.line("-> %v", err)
		return fmt.Errorf("try: %w", err)
	}
	out.line("-> token_type %s, expires_in %d s, scope %q", tok.TokenType, tok.ExpiresIn, tok.Scope)
	out.line("access_token %s (single use; never print or log it in full)", maskSecret(tok.AccessToken))
	if tok.IDClaims != nil {
		out.line("id_token claims (signature, iss, aud, exp and nonce checked):")
		keys := make([]string, 0, len(tok.IDClaims.Raw))
		for k := range tok.IDClaims.Raw {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v, _ := json.Marshal(tok.IDClaims.Raw[k])
			note := ""
			switch k {
			case "sub":
				note = "  (pairwise pseudonym, never the number)"
			case "exp", "iat", "auth_time":
				if f, ok := tok.IDClaims.Raw[k].(float64); ok {
					note = "  (" + time.Unix(int64(f), 0).UTC().Format(time.RFC3339) + ")"
				}
			}
			out.line("  %-9s %s%s", k, v, note)
		}
	}

	number := nvclient.PhoneNumber(*phone)
	body := fmt.Sprintf(`{"phoneNumber": %q}`, *phone)
	if *hashed {
		number = nvclient.HashedPhoneNumber(hash)
		body = fmt.Sprintf(`{"hashedPhoneNumber": %q}  (SHA-256 of %s)`, hash, *phone)
	}
	out.step("4. verify", "POST %s%s/verify  Authorization: Bearer %s", cfg.Issuer, nvclient.APIBasePath, maskSecret(tok.AccessToken))
	out.line("%s", body)
	res, err := c.Verify(ctx, tok.AccessToken, number)
	if err != nil {
		out.line("-> %v", err)
		return fmt.Errorf("try: %w", err)
	}
	out.line(`-> 200 {"devicePhoneNumberVerified": %v}  x-correlator %s`, res.Verified, res.Correlator)
	fmt.Fprintln(stdout)
	if !res.Verified {
		fmt.Fprintf(stdout, "NOT VERIFIED: %s is not the device's number (the device is %s)\n", *phone, *device)
		return fmt.Errorf("try: %w", errNotVerified) // the line above says which number
	}
	fmt.Fprintf(stdout, "VERIFIED: %s is the device's number\n", *phone)
	return nil
}

// openAsDevice requests the authorization URL as the device's browser,
// without following the redirect (the app is not running), and returns
// the redirect's query.
func openAsDevice(ctx context.Context, authURL string, out *stepWriter) (url.Values, error) {
	hc := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       15 * time.Second,
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode/100 != 3 || loc == "" {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		out.line("-> %s, no redirect: %s", resp.Status, strings.TrimSpace(string(body)))
		return nil, fmt.Errorf("authorize answered %s without redirecting to the app", resp.Status)
	}
	u, err := url.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("authorize redirected to a bad Location: %w", err)
	}
	q := u.Query()
	// The code is a credential until it is redeemed: shown masked, like
	// the access token, in the Location too.
	shown := loc
	if c := q.Get("code"); c != "" {
		shown = strings.Replace(loc, "code="+url.QueryEscape(c), "code="+maskSecret(c), 1)
	}
	out.line("-> %s  Location: %s", resp.Status, shown)
	if e := q.Get("error"); e != "" {
		out.line("error %s: %s", e, q.Get("error_description"))
	} else {
		out.line("code %s (single use, valid briefly), iss %s", maskSecret(q.Get("code")), q.Get("iss"))
	}
	return q, nil
}

// maskSecret shows the first 6 characters and the length of a token.
func maskSecret(s string) string {
	if len(s) <= 8 {
		return "****"
	}
	return fmt.Sprintf("%s…(%d chars)", s[:6], len(s))
}

type stepWriter struct{ w io.Writer }

func (s *stepWriter) step(name, format string, args ...any) {
	fmt.Fprintf(s.w, "\n%-13s %s\n", name, fmt.Sprintf(format, args...))
}

func (s *stepWriter) line(format string, args ...any) {
	fmt.Fprintf(s.w, "              %s\n", fmt.Sprintf(format, args...))
}
