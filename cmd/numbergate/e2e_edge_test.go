package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/numbergate/numbergate/internal/testnet"
)

// TestServeEdge checks what the HTTP edge believes: header enrichment only
// from enrichment proxies, X-Forwarded-For only from trusted proxies.
func TestServeEdge(t *testing.T) {
	testnet.RequireLoopbackAliases(t)
	n := startServe(t, t.TempDir(), `trusted_proxies: [127.0.0.41/32]
network:
  static:
    - prefix: 127.0.0.5/32
      msisdn: "+34600000005"
  header_enrichment:
    proxies: [127.0.0.31/32]
    headers: [X-MSISDN]
`)
	p := onboard(t, n, "app-e", "")
	get := func(src string, hdr map[string]string) (code, errCode string) {
		t.Helper()
		_, c := pkce()
		q := url.Values{"response_type": {"code"}, "client_id": {p.clientID}, "redirect_uri": {p.redirect},
			"scope": {scopeRead}, "state": {"s"}, "code_challenge": {c}, "code_challenge_method": {"S256"}}
		req, _ := http.NewRequest("GET", n.issuer+"/authorize?"+q.Encode(), nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := deviceClient(src).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		u, _ := url.Parse(resp.Header.Get("Location"))
		return u.Query().Get("code"), u.Query().Get("error")
	}

	if code, e := get("127.0.0.31", map[string]string{"X-MSISDN": "34600000031"}); code == "" {
		t.Errorf("enrichment proxy's header not honoured: %q", e)
	}
	if code, e := get("127.0.0.32", map[string]string{"X-MSISDN": "34600000031"}); code != "" || e != "access_denied" {
		t.Errorf("X-MSISDN from an untrusted peer was believed: code=%q err=%q", code, e)
	}
	if code, e := get("127.0.0.41", map[string]string{"X-Forwarded-For": "127.0.0.5"}); code == "" {
		t.Errorf("X-Forwarded-For from a trusted proxy not honoured: %q", e)
	}
	if code, _ := get("127.0.0.42", map[string]string{"X-Forwarded-For": "127.0.0.5"}); code != "" {
		t.Error("X-Forwarded-For from an untrusted peer was believed")
	}
	if strings.Contains(n.logs.String(), "600000031") {
		t.Error("a log line carries the enriched number")
	}
}
