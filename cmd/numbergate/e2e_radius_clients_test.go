package main

import (
	"context"
	"net"
	"net/url"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"

	nbradius "github.com/numbergate/numbergate/internal/radius"
)

// TestServeRADIUSClientEntries drives the per-client settings of
// network.radius.clients through `serve`: require_message_authenticator
// (issue 6 item 15) and name (issue 6 item 5: a gateway cannot purge or
// end another gateway's sessions, whatever NAS-IP-Address it claims).
func TestServeRADIUSClientEntries(t *testing.T) {
	pc := udpConn(t)
	n := startServeWith(t, t.TempDir(), `network:
  radius:
    listen: 127.0.0.1:0
    clients:
      - name: pgw-a
        cidr: 127.0.0.1
        secret: "secret-a"
        require_message_authenticator: true
      - name: pgw-b
        cidr: 127.0.0.2
        secret: "secret-b"
`, serveListeners{radius: pc})
	p := onboard(t, n, "app-rc", "127.0.0.41")
	gw := pc.LocalAddr().String()

	send := func(src, secret string, msgAuth bool, status rfc2866.AcctStatusType, session string) error {
		pkt := radius.New(radius.CodeAccountingRequest, []byte(secret))
		_ = rfc2866.AcctStatusType_Set(pkt, status)
		if session != "" {
			_ = rfc2866.AcctSessionID_SetString(pkt, session)
			_ = rfc2865.FramedIPAddress_Set(pkt, net.ParseIP("127.0.0.41"))
			_ = rfc2865.CallingStationID_SetString(pkt, "34600000041")
		}
		_ = rfc2865.NASIPAddress_Set(pkt, net.ParseIP("127.0.0.1")) // what pgw-a would say
		if msgAuth {
			pkt.Add(rfc2869.MessageAuthenticator_Type, make(radius.Attribute, 16))
			b, err := pkt.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			pkt.Set(rfc2869.MessageAuthenticator_Type, nbradius.MessageAuthenticator(b, []byte(secret)))
		}
		wait := answerWait
		if src == "127.0.0.1" && !msgAuth {
			wait = silenceWait // pgw-a requires a Message-Authenticator: must go unanswered
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		c := radius.Client{Retry: 300 * time.Millisecond, Dialer: net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(src)}}}
		resp, err := c.Exchange(ctx, pkt, gw)
		if err != nil {
			return err
		}
		if resp.Code != radius.CodeAccountingResponse {
			t.Fatalf("answer code %v", resp.Code)
		}
		return nil
	}
	identified := func() bool {
		t.Helper()
		_, c := pkce()
		a := p.authorize(url.Values{"code_challenge": {c}, "code_challenge_method": {"S256"}})
		if a.code == "" && a.err != "access_denied" {
			t.Fatalf("authorize: %q", a.err)
		}
		return a.code != ""
	}

	// pgw-a requires a Message-Authenticator: a Start without one is dropped.
	if err := send("127.0.0.1", "secret-a", false, rfc2866.AcctStatusType_Value_Start, "A1"); err == nil {
		t.Fatal("a Start without Message-Authenticator from a client that requires one was answered")
	}
	if identified() {
		t.Fatal("a Start without the required Message-Authenticator was recorded")
	}
	if err := send("127.0.0.1", "secret-a", true, rfc2866.AcctStatusType_Value_Start, "A1"); err != nil {
		t.Fatalf("Start with Message-Authenticator: %v", err)
	}
	if !identified() {
		t.Fatal("the device is not identified after pgw-a's Start")
	}

	// pgw-b, with its own secret, claims pgw-a's NAS-IP-Address.
	if err := send("127.0.0.2", "secret-b", false, rfc2866.AcctStatusType_Value_Stop, "A1"); err != nil {
		t.Fatalf("pgw-b's Stop: %v", err)
	}
	if err := send("127.0.0.2", "secret-b", false, rfc2866.AcctStatusType_Value_AccountingOn, ""); err != nil {
		t.Fatalf("pgw-b's Accounting-On: %v", err)
	}
	if !identified() {
		t.Fatal("pgw-b's Stop or Accounting-On ended pgw-a's session")
	}
	if err := send("127.0.0.1", "secret-a", true, rfc2866.AcctStatusType_Value_AccountingOn, ""); err != nil {
		t.Fatalf("pgw-a's Accounting-On: %v", err)
	}
	if identified() {
		t.Fatal("pgw-a's own Accounting-On did not purge its session")
	}
}
