package main

import (
	"context"
	"net"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
)

// accountingStart sends a gateway's RADIUS Accounting-Request Start (RFC
// 2866) to the feed at to, signed with secret: framed is the subscriber's
// address, calling its number without '+', session its Acct-Session-Id,
// NAS-IP-Address 127.0.0.1. It returns the answer, or the error once wait
// has passed without one (a Start that must go unanswered passes
// silenceWait).
func accountingStart(to, secret, framed, calling, session string, wait time.Duration) (*radius.Packet, error) {
	pkt := radius.New(radius.CodeAccountingRequest, []byte(secret))
	_ = rfc2866.AcctStatusType_Set(pkt, rfc2866.AcctStatusType_Value_Start)
	_ = rfc2865.FramedIPAddress_Set(pkt, net.ParseIP(framed))
	_ = rfc2865.CallingStationID_SetString(pkt, calling)
	_ = rfc2866.AcctSessionID_SetString(pkt, session)
	_ = rfc2865.NASIPAddress_Set(pkt, net.ParseIP("127.0.0.1"))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return (&radius.Client{Retry: time.Second}).Exchange(ctx, pkt, to)
}

// mustStart is accountingStart that fails the test unless the Start is
// answered with an Accounting-Response within answerWait.
func mustStart(t *testing.T, to, secret, framed, calling, session string) {
	t.Helper()
	resp, err := accountingStart(to, secret, framed, calling, session, answerWait)
	if err != nil {
		t.Fatalf("RADIUS Start for %s: %v", framed, err)
	}
	if resp.Code != radius.CodeAccountingResponse {
		t.Fatalf("RADIUS Start for %s: answer code %v", framed, resp.Code)
	}
}

// udpConn is a UDP socket on 127.0.0.1:0 for a feed (RADIUS, CGNAT syslog)
// that a test hands to serve.
func udpConn(t *testing.T) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return pc
}
