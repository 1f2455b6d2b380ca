package radius

import (
	"bytes"
	"net/netip"
	"testing"

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
