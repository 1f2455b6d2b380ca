package cli_test

import (
	"context"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// TestClientsAddQuotaPerDay: issue 6 item 7. --quota-per-day is stored
// with the client and listed; a negative quota is refused.
func TestClientsAddQuotaPerDay(t *testing.T) {
	e := newEnv(t)
	pub := e.jwksFile("pub.json", jose.JSONWebKey{Key: ecKey(t).Public(), KeyID: "k1", Algorithm: "ES256"})
	out, stderr, err := e.run("clients", e.addArgs("metered", pub, "--quota-per-day", "1000")...)
	if err != nil {
		t.Fatalf("add: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "quota 1000 API calls per UTC day") {
		t.Errorf("add output: %s", out)
	}
	got, err := e.store().Client(context.Background(), "metered")
	if err != nil || got.QuotaPerDay != 1000 {
		t.Fatalf("stored quota %d, %v", got.QuotaPerDay, err)
	}
	out, _, err = e.run("clients", "list", "--config", e.config, "--json")
	if err != nil || !strings.Contains(out, `"quota_per_day": 1000`) {
		t.Errorf("list --json: %v\n%s", err, out)
	}
	out, _, err = e.run("clients", "list", "--config", e.config)
	if err != nil || !strings.Contains(out, "QUOTA/DAY") || !strings.Contains(out, " 1000 ") {
		t.Errorf("list: %v\n%s", err, out)
	}
	_, _, err = e.run("clients", e.addArgs("negative", pub, "--quota-per-day", "-5")...)
	if err == nil || !strings.Contains(err.Error(), "--quota-per-day -5: must be from 0 (no quota) to 1000000000") {
		t.Errorf("negative quota: %v", err)
	}
}
