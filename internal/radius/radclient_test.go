package radius

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestRadclientInterop sends Start and Stop exactly as a gateway would, with
// FreeRADIUS's radclient (Debian package freeradius-utils).
func TestRadclientInterop(t *testing.T) {
	radclient, err := exec.LookPath("radclient")
	if err != nil {
		t.Skip("radclient not installed (apt-get install -y freeradius-utils); interop with FreeRADIUS not tested")
	}
	h := start(t, Config{})
	send := func(attrs string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, radclient, "-x", "-r", "2", "-t", "2", h.addr, "acct", testSecret)
		cmd.Stdin = strings.NewReader(attrs + "\n")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("radclient: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "Accounting-Response") {
			t.Fatalf("no Accounting-Response:\n%s", out)
		}
		t.Logf("%s", out)
		return string(out)
	}
	send(`Acct-Status-Type = Start, Acct-Session-Id = "0A1B2C3D", User-Name = "internet", ` +
		`Calling-Station-Id = "34600000042", Framed-IP-Address = 10.45.0.42, ` +
		`Framed-IPv6-Prefix = 2001:db8:42:1::/64, NAS-IP-Address = 192.0.2.10, NAS-Identifier = "pgw-1", ` +
		`3GPP-IMSI = "214070000000042", Acct-Delay-Time = 0, Message-Authenticator = 0x00`)
	for _, a := range []string{"10.45.0.42", "2001:db8:42:1::abcd"} {
		if got := h.numberAt(t, a); got != "+34600000042" {
			t.Fatalf("after radclient Start, %s -> %q", a, got)
		}
	}
	ss, _ := h.store.NetworkSessions(context.Background())
	if len(ss) != 2 || ss[0].IMSI != "214070000000042" || ss[0].NAS != "192.0.2.10" {
		t.Errorf("sessions %+v", ss)
	}
	st := h.packets
	if st(DropBadMessageAuth) != 0 || counterValue(h.srv.metrics.MessageAuthenticators) != 1 {
		t.Fatalf("radclient's Message-Authenticator not verified: %v", h.counts())
	}
	send(`Acct-Status-Type = Stop, Acct-Session-Id = "0A1B2C3D", Calling-Station-Id = "34600000042", ` +
		`Framed-IP-Address = 10.45.0.42, Framed-IPv6-Prefix = 2001:db8:42:1::/64, NAS-IP-Address = 192.0.2.10, ` +
		`Acct-Session-Time = 360, Acct-Terminate-Cause = User-Request`)
	if got := h.numberAt(t, "10.45.0.42"); got != "" {
		t.Fatalf("after radclient Stop: %q", got)
	}
	if got := h.numberAt(t, "2001:db8:42:1::abcd"); got != "" {
		t.Fatalf("after radclient Stop (IPv6): %q", got)
	}
}
