package main

import (
	"context"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
)

// TestServeRADIUS drives `serve` as an operator network would: a packet
// gateway sends RADIUS accounting over UDP, then the device behind that
// address runs /authorize from it.
func TestServeRADIUS(t *testing.T) {
	pc := udpConn(t)
	dir := t.TempDir()
	n := startServeWith(t, dir, `network:
  radius:
    listen: 127.0.0.1:0
    clients:
      - cidr: 127.0.0.0/8
        secret: "s3cret-gw"
    idle_timeout: 1h
`, serveListeners{radius: pc})
	p := onboard(t, n, "app-r", "127.0.0.21")
	gw := pc.LocalAddr().String()

	acct := func(secret string, status rfc2866.AcctStatusType, ip, msisdn, session string) error {
		pkt := radius.New(radius.CodeAccountingRequest, []byte(secret))
		_ = rfc2866.AcctStatusType_Set(pkt, status)
		if ip != "" {
			_ = rfc2865.FramedIPAddress_Set(pkt, net.ParseIP(ip))
		}
		if msisdn != "" {
			_ = rfc2865.CallingStationID_SetString(pkt, msisdn)
		}
		if session != "" {
			_ = rfc2866.AcctSessionID_SetString(pkt, session)
		}
		_ = rfc2865.NASIPAddress_Set(pkt, net.ParseIP("127.0.0.1"))
		wait := answerWait
		if secret == "wrong-secret" {
			wait = silenceWait // must go unanswered
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		resp, err := (&radius.Client{Retry: time.Second}).Exchange(ctx, pkt, gw)
		if err != nil {
			return err
		}
		if resp.Code != radius.CodeAccountingResponse {
			t.Fatalf("answer code %v", resp.Code)
		}
		return nil
	}
	authorize := func() authzResult {
		_, c := pkce()
		return p.authorize(url.Values{"code_challenge": {c}, "code_challenge_method": {"S256"}})
	}

	if a := authorize(); a.err != "access_denied" {
		t.Fatalf("before any session: %q, want access_denied", a.err)
	}
	if err := acct("wrong-secret", rfc2866.AcctStatusType_Value_Start, "127.0.0.21", "34600000021", "S1"); err == nil {
		t.Fatal("a packet with the wrong secret was answered")
	}
	if a := authorize(); a.err != "access_denied" {
		t.Fatalf("after a forged Start: %q, want access_denied", a.err)
	}
	if err := acct("s3cret-gw", rfc2866.AcctStatusType_Value_Start, "127.0.0.21", "34600000021", "S1"); err != nil {
		t.Fatalf("Start: %v", err)
	}
	tr := p.flow(scopeVerify, "")
	if r := p.verify(tr.AccessToken, `{"phoneNumber":"+34600000021"}`); r.body["devicePhoneNumberVerified"] != true {
		t.Fatalf("verify after Start = %d %v", r.status, r.body)
	}

	// A Stop with another session id leaves the session; the right one ends it.
	if err := acct("s3cret-gw", rfc2866.AcctStatusType_Value_Stop, "127.0.0.21", "34600000021", "OTHER"); err != nil {
		t.Fatal(err)
	}
	if a := authorize(); a.code == "" {
		t.Fatalf("a Stop for another session ended this one: %q", a.err)
	}
	if err := acct("s3cret-gw", rfc2866.AcctStatusType_Value_Stop, "127.0.0.21", "34600000021", "S1"); err != nil {
		t.Fatal(err)
	}
	if a := authorize(); a.err != "access_denied" {
		t.Fatalf("after Stop: %q, want access_denied", a.err)
	}

	// Interim-Update recreates a session whose Start was lost; Accounting-On purges.
	if err := acct("s3cret-gw", rfc2866.AcctStatusType_Value_InterimUpdate, "127.0.0.21", "+34600000022", "S2"); err != nil {
		t.Fatal(err)
	}
	tr = p.flow(scopeRead, "")
	if r := p.call("GET", "/number-verification/v2/device-phone-number", tr.AccessToken, "", nil); r.body["devicePhoneNumber"] != "+34600000022" {
		t.Fatalf("after Interim = %v", r.body)
	}
	if err := acct("s3cret-gw", rfc2866.AcctStatusType_Value_AccountingOn, "", "", ""); err != nil {
		t.Fatal(err)
	}
	if a := authorize(); a.err != "access_denied" {
		t.Fatalf("after Accounting-On: %q, want access_denied", a.err)
	}
	// The write path's backpressure is visible to the operator.
	metrics := getBody(t, n.admin+"/metrics")
	for _, name := range []string{"numbergate_radius_queue_depth ", "numbergate_store_write_queue ",
		"numbergate_store_write_batches_total ", "numbergate_store_writes_total ",
		"numbergate_store_write_batches_rerun_total ", "numbergate_store_session_index_ready ",
		"numbergate_store_session_index_sessions ", "numbergate_store_session_index_drops_total "} {
		if !strings.Contains(metrics, "\n"+name) {
			t.Errorf("/metrics has no %s", name)
		}
	}
	// The session index is in use: onboard's `clients add` wrote to the
	// database from another connection, after which serve drops the index
	// (lookups read SQLite meanwhile) and rebuilds it.
	deadline := time.Now().Add(2 * time.Minute) // generous: a rebuild may back off
	for !strings.Contains(getBody(t, n.admin+"/metrics"), "\nnumbergate_store_session_index_ready 1\n") {
		if time.Now().After(deadline) {
			t.Fatal("/metrics: the session index is not in use again after two minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
