package main

import (
	"strings"
	"testing"

	"github.com/numbergate/numbergate/internal/nv"
)

// TestServeWarnsWithoutSources: a server that can identify nobody says so.
func TestServeWarnsWithoutSources(t *testing.T) {
	n := startServe(t, t.TempDir(), "")
	if !strings.Contains(n.logs.String(), "no network source is configured") {
		t.Errorf("no warning for a server without network sources:\n%s", n.logs)
	}
	m := startServe(t, t.TempDir(), "network:\n  static:\n    - prefix: 192.0.2.10/32\n      msisdn: \"+34600000010\"\n")
	if strings.Contains(m.logs.String(), "no network source is configured") {
		t.Errorf("warned although network.static is configured")
	}
}

// TestSessionsShowStatic: the operator commands see what the server sees,
// the static map included: `sessions lookup` of a statically mapped
// address says what the server answers and from which source.
func TestSessionsShowStatic(t *testing.T) {
	n := startServe(t, t.TempDir(), "network:\n  static:\n    - prefix: 192.0.2.0/24\n      msisdn: \"+34600000010\"\n")

	out, errb, err := runQuick("sessions", "lookup", "--config", n.cfgPath, "192.0.2.77")
	if err != nil {
		t.Fatalf("lookup of a statically mapped address: %v\n%s%s", err, out, errb)
	}
	if !strings.Contains(out, "server answers") || !strings.Contains(out, "(source static)") || !strings.Contains(out, nv.PhoneNumber("+34600000010").Masked()) {
		t.Errorf("lookup does not show the server's answer and source:\n%s", out)
	}
	if strings.Contains(out, "+34600000010") {
		t.Errorf("number shown unmasked without --show-numbers:\n%s", out)
	}

	_, _, err = runQuick("sessions", "lookup", "--config", n.cfgPath, "198.51.100.1")
	if err == nil || !strings.Contains(err.Error(), "would refuse") {
		t.Errorf("lookup of an unknown address: %v", err)
	}

	out, _, err = runQuick("sessions", "list", "--config", n.cfgPath)
	if err != nil || !strings.Contains(out, "STATIC PREFIX") || !strings.Contains(out, "192.0.2.0/24") {
		t.Errorf("sessions list does not show the static map: %v\n%s", err, out)
	}
}
