package config

import (
	"strings"
	"testing"
	"time"
)

// TestParseLimits: issue 6 item 7. serve has sane rate limits by default;
// each is N/s, N/m, N/h or off; bad values are reported with their path.
func TestParseLimits(t *testing.T) {
	cfg, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	want := Limits{AuthorizePerAddress: Rate{10, time.Second}, TokenPerClient: Rate{200, time.Second}, APIPerClient: Rate{500, time.Second}}
	if cfg.Limits != want {
		t.Errorf("defaults: %+v, want %+v", cfg.Limits, want)
	}

	cfg, err = Parse([]byte(minimal + `
limits:
  authorize_per_address: 3/s
  token_per_client: 600/m
  api_per_client: "off"
`))
	if err != nil {
		t.Fatal(err)
	}
	want = Limits{AuthorizePerAddress: Rate{3, time.Second}, TokenPerClient: Rate{600, time.Minute}, APIPerClient: Rate{}}
	if cfg.Limits != want {
		t.Errorf("set: %+v, want %+v", cfg.Limits, want)
	}
	if got := cfg.Limits.TokenPerClient.String() + " " + cfg.Limits.APIPerClient.String(); got != "600/m off" {
		t.Errorf("String: %q", got)
	}

	cfg, err = Parse([]byte(minimal + "limits:\n  token_per_client: 7/h\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Limits.TokenPerClient != (Rate{7, time.Hour}) || cfg.Limits.AuthorizePerAddress != DefaultAuthorizePerAddress {
		t.Errorf("one key set, others default: %+v", cfg.Limits)
	}

	_, err = Parse([]byte(minimal + `
limits:
  authorize_per_address: 10
  token_per_client: 0/s
  api_per_client: 5/d
  per_address: 1/s
`))
	if err == nil {
		t.Fatal("bad limits accepted")
	}
	for _, w := range []string{
		`limits.authorize_per_address: "10" is not a rate: write N/s, N/m or N/h`,
		`limits.token_per_client: "0/s": N must be from 1 to 1000000 (write off for no limit)`,
		`limits.api_per_client: "5/d": unit "d" is not s, m or h`,
		`unknown key "per_address" (valid keys here: authorize_per_address, token_per_client, api_per_client)`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

// TestParseUsage: usage.retention defaults to 90 days and takes a duration.
func TestParseUsage(t *testing.T) {
	cfg, err := Parse([]byte(minimal))
	if err != nil || cfg.Usage.Retention != 90*24*time.Hour {
		t.Fatalf("default retention: %v %v", cfg.Usage.Retention, err)
	}
	cfg, err = Parse([]byte(minimal + "usage:\n  retention: 720h\n"))
	if err != nil || cfg.Usage.Retention != 720*time.Hour {
		t.Fatalf("retention 720h: %v %v", cfg.Usage.Retention, err)
	}
	_, err = Parse([]byte(minimal + "usage:\n  retention: 90d\n"))
	if err == nil || !strings.Contains(err.Error(), `usage.retention: "90d" is not a duration`) {
		t.Errorf("bad retention: %v", err)
	}
}
