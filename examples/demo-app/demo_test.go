package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestDemoHTTP plays the browser with a plain HTTP client (cookies kept,
// redirects followed), so the app's behaviour is checked also where no
// Chromium is installed.
func TestDemoHTTP(t *testing.T) {
	base := startDemo(t)
	newBrowser := func() *http.Client {
		jar, _ := cookiejar.New(nil)
		return &http.Client{Jar: jar, Timeout: 10 * time.Second}
	}
	get := func(resp *http.Response, err error) (int, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	status, body := get(http.Get(base + "/"))
	if status != 200 || !strings.Contains(body, `id="phone"`) || strings.Contains(body, `id="result"`) {
		t.Errorf("form: %d\n%s", status, body)
	}

	for _, tc := range []struct {
		name          string
		form          url.Values
		status        int
		result, shows string
	}{
		{"verified", url.Values{"phone": {"+34600000001"}}, 200, "verified", "is the number of the device"},
		{"not verified", url.Values{"phone": {"+34600000001"}, "device": {"+34600000002"}}, 200, "not-verified", "is not the number"},
		{"denied", url.Values{"phone": {"+34600000001"}, "device": {"+99900000001"}}, 200, "error", "access_denied"},
		{"not a number", url.Values{"phone": {"600 000 001"}}, 400, "error", "international form"},
		{"bad device number", url.Values{"phone": {"+34600000001"}, "device": {"12"}}, 400, "error", "not a phone number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := get(newBrowser().PostForm(base+"/verify", tc.form))
			if status != tc.status || !strings.Contains(body, `data-result="`+tc.result+`"`) || !strings.Contains(body, tc.shows) {
				t.Errorf("%d, want %d %s %q:\n%s", status, tc.status, tc.result, tc.shows, body)
			}
		})
	}

	t.Run("callback without a verification in progress", func(t *testing.T) {
		status, body := get(newBrowser().Get(base + "/callback?code=x&state=y"))
		if status != 400 || !strings.Contains(body, "No verification in progress") {
			t.Errorf("%d\n%s", status, body)
		}
	})

	t.Run("callback with another state", func(t *testing.T) {
		b := newBrowser()
		b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), base+"/callback") {
				return http.ErrUseLastResponse
			}
			return nil
		}
		resp, err := b.PostForm(base+"/verify", url.Values{"phone": {"+34600000001"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cb, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || cb.Query().Get("code") == "" {
			t.Fatalf("no callback: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		q := cb.Query()
		q.Set("state", "forged")
		cb.RawQuery = q.Encode()
		status, body := get(b.Get(cb.String()))
		if !strings.Contains(body, `data-result="error"`) || !strings.Contains(body, "did not belong") {
			t.Errorf("%d\n%s", status, body)
		}
	})
}
