package radius

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
)

// TestResponseEncoding: the Accounting-Response built in one buffer is,
// octet for octet, what layeh.com/radius encodes for the same answer (its
// Response, the request's Proxy-States in order, Encode), with none, one
// and several Proxy-States.
func TestResponseEncoding(t *testing.T) {
	client := Client{Name: "gw", CIDR: netip.MustParsePrefix("127.0.0.0/8"), Secret: []byte(testSecret)}
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	for _, states := range [][]string{nil, {"one"}, {"first", "", "third-is-longer-than-the-others"}} {
		p := radius.New(radius.CodeAccountingRequest, []byte(testSecret))
		rfc2866.AcctStatusType_Add(p, rfc2866.AcctStatusType_Value_Start)
		rfc2866.AcctSessionID_AddString(p, "s")
		for i, st := range states {
			rfc2865.ProxyState_AddString(p, st)
			if i == 0 {
				rfc2865.CallingStationID_AddString(p, "+34600000001") // between Proxy-States
			}
		}
		if len(states) == 0 {
			rfc2865.CallingStationID_AddString(p, "+34600000001")
		}
		rfc2865.FramedIPAddress_Add(p, []byte{10, 0, 0, 1})
		p.Identifier = 42
		b, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		req, reason, detail := decode(b, client, from)
		if reason != "" {
			t.Fatal(reason, detail)
		}
		got, err := req.response()
		if err != nil {
			t.Fatal(err)
		}
		want := req.packet.Response(radius.CodeAccountingResponse)
		for _, avp := range req.packet.Attributes {
			if avp.Type == rfc2865.ProxyState_Type {
				want.Add(avp.Type, avp.Attribute)
			}
		}
		wantB, err := want.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, wantB) {
			t.Errorf("%d Proxy-States: response\n%x\nwant\n%x", len(states), got, wantB)
		}
		if !radius.IsAuthenticResponse(got, b, []byte(testSecret)) {
			t.Errorf("%d Proxy-States: response not authentic for the request", len(states))
		}
	}
}

// plainConn hides *net.UDPConn's AddrPort methods: Serve must then read
// and answer through net.PacketConn's ReadFrom and WriteTo.
type plainConn struct{ net.PacketConn }

// TestServePlainPacketConn: a PacketConn that is not a *net.UDPConn (a
// wrapper) is served as well: a Start is answered after it is stored, and
// its retransmit from the replay cache.
func TestServePlainPacketConn(t *testing.T) {
	store := openStore(t)
	srv, err := New(Config{Clients: []Client{{CIDR: netip.MustParsePrefix("127.0.0.0/8"), Secret: []byte(testSecret)}},
		IdleTimeout: time.Hour}, store, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pc := serveOnLoopback(t, srv, func(pc net.PacketConn) net.PacketConn { return plainConn{pc} })

	p := acct{status: rfc2866.AcctStatusType_Value_Start, sessionID: "plain", msisdn: "34600000007", ipv4: "10.0.0.7"}.packet(t)
	for i := range 2 { // the second is a retransmit
		ctx, cancel := context.WithTimeout(context.Background(), answerWait)
		resp, err := radius.Exchange(ctx, p, pc.LocalAddr().String())
		cancel()
		if err != nil || resp.Code != radius.CodeAccountingResponse {
			t.Fatalf("packet %d: %v, %v; want an Accounting-Response", i, resp, err)
		}
	}
	if got := counterValue(srv.metrics.Packets.WithLabelValues(OutcomeDuplicate)); got != 1 {
		t.Errorf("duplicates answered from the cache: %d, want 1", got)
	}
	if _, err := store.SessionFor(context.Background(), netip.MustParseAddr("10.0.0.7"), time.Time{}); err != nil {
		t.Errorf("session stored before the answer: %v", err)
	}
}

// FuzzParsePacket: parsePacket accepts and refuses exactly what
// radius.Parse does, with the same error text and the same packet.
func FuzzParsePacket(f *testing.F) {
	valid := func(extra ...byte) []byte {
		p := radius.New(radius.CodeAccountingRequest, []byte(testSecret))
		rfc2866.AcctStatusType_Add(p, rfc2866.AcctStatusType_Value_Start)
		rfc2866.AcctSessionID_AddString(p, "s-1")
		rfc2865.ProxyState_AddString(p, "")
		rfc2865.FramedIPAddress_Add(p, []byte{10, 0, 0, 1})
		b, err := p.Encode()
		if err != nil {
			f.Fatal(err)
		}
		return append(b, extra...)
	}
	f.Add(valid())
	f.Add(valid(0, 0, 0))                                                             // padding past Length
	f.Add(valid()[:19])                                                               // short
	f.Add([]byte{4, 1, 0, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}) // no attributes
	bad := valid()
	bad[21] = 1 // an attribute length under 2
	f.Add(bad)
	bad = valid()
	bad[21] = 250 // past the end
	f.Add(bad)
	bad = valid()
	binary.BigEndian.PutUint16(bad[2:4], uint16(len(bad)-1)) // cuts an attribute
	f.Add(bad)
	secret := []byte(testSecret)
	f.Fuzz(func(t *testing.T, b []byte) {
		want, wantErr := radius.Parse(b, secret)
		got, err := parsePacket(b, secret)
		if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
			t.Fatalf("parsePacket error %v, radius.Parse %v", err, wantErr)
		}
		if err != nil {
			return
		}
		if got.Code != want.Code || got.Identifier != want.Identifier || got.Authenticator != want.Authenticator ||
			!bytes.Equal(got.Secret, want.Secret) || len(got.Attributes) != len(want.Attributes) {
			t.Fatalf("parsePacket %+v, radius.Parse %+v", got, want)
		}
		for i, a := range want.Attributes {
			g := got.Attributes[i]
			if g.Type != a.Type || !bytes.Equal(g.Attribute, a.Attribute) || (g.Attribute == nil) != (a.Attribute == nil) {
				t.Fatalf("attribute %d: %+v, want %+v", i, g, a)
			}
		}
		if len(b) > 0 {
			before := bytes.Clone(b)
			clear(b) // the read buffer is reused: the packet must not share it
			for i, a := range got.Attributes {
				if !bytes.Equal(a.Attribute, want.Attributes[i].Attribute) {
					t.Fatalf("attribute %d changed with the buffer it was read from", i)
				}
			}
			copy(b, before)
		}
	})
}
