package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/numbergate/numbergate/internal/sandboxtest"
	"github.com/numbergate/numbergate/pkg/nvclient"
)

// startDemo runs the real sandbox and the demo app in-process, the app on
// a port of its own (registered as one more redirect URI of the demo
// client), and returns the app's URL.
func startDemo(t *testing.T) string {
	t.Helper()
	sb := sandboxtest.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	sb.AddRedirectURI(t, base+"/callback")
	cfg, err := nvclient.ReadCredentials(sb.CredentialsPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RedirectURI = base + "/callback"
	a, err := newApp(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return base
}

// findChromium returns Debian's chromium, or skips the test.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("skipping the browser test: no chromium on PATH (Debian package `chromium`; .ci/run installs it)")
	return ""
}

// TestBrowserDemoApp drives the demo app in headless Chromium against the
// sandbox: the user types a number, presses Verify, the browser follows
// the redirects through /authorize and back, and the page tells the
// answer.
func TestBrowserDemoApp(t *testing.T) {
	chromium := findChromium(t)
	base := startDemo(t)

	profile, err := os.MkdirTemp("", "demo-app-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Chromium's helpers can write there briefly after it stops.
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(800, 760),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	// The first call starts the browser and must not carry a timeout (it
	// would stop the browser); a timer bounds it instead.
	guard := time.AfterFunc(90*time.Second, cancelAlloc)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("chromium did not start: %v", err)
	}
	guard.Stop()

	cases := []struct {
		name, phone, device string
		result, title       string
		detail              string
	}{
		{"the device's number", "+34600000001", "", "verified", "Verified", "is the number of the device"},
		{"another number", "+34600000001", "+34600000002", "not-verified", "Not verified", "is not the number"},
		{"a device the network does not recognise", "+34600000001", "+99900000001", "error", "did not recognise", "access_denied"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(bctx, 30*time.Second)
			defer cancel()
			steps := []chromedp.Action[chromedp.Void]{
				chromedp.Navigate(base + "/"),
				chromedp.WaitVisible(chromedp.CSS("#phone")),
				chromedp.SendKeys(chromedp.CSS("#phone"), tc.phone),
			}
			if tc.device != "" {
				steps = append(steps, chromedp.SendKeys(chromedp.CSS("#device"), tc.device))
			}
			steps = append(steps,
				chromedp.Click(chromedp.CSS("#verify")),
				chromedp.WaitVisible(chromedp.CSS("#result")),
			)
			if err := chromedp.Do(ctx, steps...); err != nil {
				t.Fatal(err)
			}
			result := must(t, ctx, chromedp.AttributeValue(chromedp.CSS("#result"), "data-result")).Value
			title := must(t, ctx, chromedp.Text(chromedp.CSS("#result-title")))
			detail := must(t, ctx, chromedp.Text(chromedp.CSS("#result-detail")))
			location := must(t, ctx, chromedp.Location())
			if result != tc.result || !strings.Contains(title, tc.title) || !strings.Contains(detail, tc.detail) {
				t.Errorf("page shows %s %q %q, want %s %q ... %q", result, title, detail, tc.result, tc.title, tc.detail)
			}
			// The browser really went through /authorize and came back to
			// the app's callback.
			if !strings.HasPrefix(location, base+"/callback?") {
				t.Errorf("the page is at %s, want the app's callback", location)
			}
			if path := os.Getenv("DEMO_SCREENSHOT"); path != "" && i == 0 {
				png := must(t, ctx, chromedp.FullScreenshot(100))
				if err := os.WriteFile(path, png, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func must[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
