package radius

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"net/netip"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"

	"github.com/numbergate/numbergate/internal/nv"
)

const (
	maxPacket = radius.MaxPacketLength

	// Acct-Status-Type values (RFC 2866 section 5.1).
	statusStart   = uint32(rfc2866.AcctStatusType_Value_Start)
	statusStop    = uint32(rfc2866.AcctStatusType_Value_Stop)
	statusInterim = uint32(rfc2866.AcctStatusType_Value_InterimUpdate)
	statusOn      = uint32(rfc2866.AcctStatusType_Value_AccountingOn)
	statusOff     = uint32(rfc2866.AcctStatusType_Value_AccountingOff)

	// Framed-IPv6-Prefix (RFC 3162 section 2.3).
	typeFramedIPv6Prefix radius.Type = 97

	// 3GPP vendor-specific attributes (3GPP TS 29.061 section 16.4.7).
	vendor3GPP     = 10415
	vendor3GPPIMSI = 1
)

// request is a decoded, authentic Accounting-Request.
type request struct {
	packet *radius.Packet
	from   netip.AddrPort
	// msgAuth is set when a Message-Authenticator was present and verified.
	msgAuth bool

	status      uint32
	sessionID   string
	msisdn      nv.PhoneNumber
	prefixes    []netip.Prefix
	nas         string // the gateway as the packet names it (informative)
	client      string // the name of the client entry it authenticated against
	arrived     time.Time
	imsi        string
	eventTime   time.Time
	delay       uint32 // Acct-Delay-Time, seconds
	sessionTime uint32 // Acct-Session-Time, seconds
	// shard picks the worker: the same for every packet of a subscriber
	// address (its first prefix), of a client's On/Off, or of other kinds.
	shard uint32
	key   replayKey
}

// replayKey identifies a packet for the replay cache and the in-flight
// set: its sender's address, Identifier and Request Authenticator. An array,
// so that building and hashing it allocates nothing.
type replayKey [16 + 1 + 16]byte

func keyOf(from netip.AddrPort, identifier byte, authenticator [16]byte) replayKey {
	var k replayKey
	a := from.Addr().As16()
	copy(k[:16], a[:])
	k[16] = identifier
	copy(k[17:], authenticator[:])
	return k
}

// response encodes the Accounting-Response (RFC 2866 section 4.2): the
// Response Authenticator is MD5(Code+Identifier+Length+Request
// Authenticator+Attributes+Secret); Proxy-State attributes are copied in
// order (RFC 2865 section 5.33). It is built in one buffer: the answer to
// every packet, so its allocations count.
func (r *request) response() ([]byte, error) {
	size := 20
	for _, avp := range r.packet.Attributes {
		if avp.Type == rfc2865.ProxyState_Type {
			if len(avp.Attribute) > 253 {
				return nil, errors.New("proxy-state longer than an attribute may be")
			}
			size += 2 + len(avp.Attribute)
		}
	}
	if size > maxPacket {
		return nil, errors.New("response longer than a packet may be")
	}
	b := make([]byte, 20, size)
	b[0] = byte(radius.CodeAccountingResponse)
	b[1] = r.packet.Identifier
	binary.BigEndian.PutUint16(b[2:4], uint16(size))
	copy(b[4:20], r.packet.Authenticator[:])
	for _, avp := range r.packet.Attributes {
		if avp.Type == rfc2865.ProxyState_Type {
			b = append(b, byte(avp.Type), byte(2+len(avp.Attribute)))
			b = append(b, avp.Attribute...)
		}
	}
	h := md5.New()
	h.Write(b)
	h.Write(r.packet.Secret)
	h.Sum(b[4:4:20])
	return b, nil
}

// decode authenticates and decodes a datagram from client. It returns a
// drop reason (and a detail without the number) when the packet must be
// dropped.
func decode(b []byte, client Client, from netip.AddrPort) (*request, string, string) {
	if len(b) < 20 {
		return nil, DropMalformed, "shorter than a RADIUS header"
	}
	if radius.Code(b[0]) != radius.CodeAccountingRequest {
		return nil, DropNotAccounting, "code " + radius.Code(b[0]).String()
	}
	length := int(binary.BigEndian.Uint16(b[2:4]))
	if length < 20 || length > maxPacket || length > len(b) {
		return nil, DropMalformed, "bad length field"
	}
	b = b[:length] // octets past Length are padding (RFC 2865 section 3)
	if !authenticRequest(b, client.Secret) {
		return nil, DropBadAuthenticator, "request authenticator does not match the client's secret"
	}
	p, err := parsePacket(b, client.Secret)
	if err != nil {
		return nil, DropMalformed, err.Error()
	}
	maOK, maPresent := verifyMessageAuthenticator(b, p, client.Secret)
	switch {
	case maPresent && !maOK:
		return nil, DropBadMessageAuth, "message-authenticator does not match"
	case !maPresent && client.RequireMessageAuthenticator:
		return nil, DropMissingMessageAuth, "client requires message-authenticator"
	}

	req := &request{packet: p, from: from, msgAuth: maOK, client: client.Name,
		key: keyOf(from, p.Identifier, p.Authenticator)}
	st, ok := integer(p, rfc2866.AcctStatusType_Type)
	if !ok {
		return nil, DropMissingAttribute, "no Acct-Status-Type"
	}
	req.status = st
	req.delay, _ = integer(p, rfc2866.AcctDelayTime_Type)
	req.sessionTime, _ = integer(p, rfc2866.AcctSessionTime_Type)
	if ts, ok := integer(p, rfc2869.EventTimestamp_Type); ok {
		req.eventTime = time.Unix(int64(ts), 0)
	}
	if v, ok := p.Lookup(rfc2866.AcctSessionID_Type); ok {
		req.sessionID = string(v)
	}

	// The gateway: NAS-IP-Address, else NAS-Identifier, else the source.
	var nasIP, nasID string
	if v, ok := p.Lookup(rfc2865.NASIPAddress_Type); ok && len(v) == 4 {
		nasIP = netip.AddrFrom4([4]byte(v)).String()
	}
	if v, ok := p.Lookup(rfc2865.NASIdentifier_Type); ok && len(v) > 0 {
		nasID = string(v)
	}
	switch {
	case nasIP != "":
		req.nas = nasIP
	case nasID != "":
		req.nas = nasID
	default:
		req.nas = from.Addr().String()
	}

	switch st {
	case statusOn, statusOff:
		req.shard = shardOfString("client:" + client.Name)
		return req, "", ""
	case statusStart, statusInterim, statusStop:
	default:
		req.shard = shardOfString("other")
		return req, "", ""
	}

	if req.sessionID == "" {
		return nil, DropMissingAttribute, "no Acct-Session-Id"
	}
	req.prefixes = framedPrefixes(p)
	if len(req.prefixes) == 0 {
		return nil, DropMissingAttribute, "no usable Framed-IP-Address or Framed-IPv6-Prefix"
	}
	req.shard = shardOfPrefix(req.prefixes[0])
	if st == statusStop {
		return req, "", ""
	}
	csid, ok := p.Lookup(rfc2865.CallingStationID_Type)
	if !ok || len(csid) == 0 {
		return nil, DropMissingAttribute, "no Calling-Station-Id"
	}
	n, err := nv.NormalizeMSISDN(string(csid))
	if err != nil {
		return nil, DropBadCallingStationID, "Calling-Station-Id is not an international number"
	}
	req.msisdn = n
	req.imsi = imsi(p)
	return req, "", ""
}

// parsePacket is radius.Parse (the same checks, errors and result) in four
// allocations instead of two per attribute: one copy of the attributes'
// octets (the packet must not keep b, a reused read buffer), one array of
// AVPs, one list of pointers to them, and the packet.
func parsePacket(b, secret []byte) (*radius.Packet, error) {
	if len(b) < 20 {
		return nil, errors.New("radius: packet not at least 20 bytes long")
	}
	length := int(binary.BigEndian.Uint16(b[2:4]))
	if length < 20 || length > maxPacket || len(b) < length {
		return nil, errors.New("radius: invalid packet length")
	}
	raw := b[20:length]
	n := 0
	for rest := raw; len(rest) > 0; n++ {
		if len(rest) < 2 {
			return nil, errors.New("short buffer")
		}
		l := int(rest[1])
		if l > len(rest) || l < 2 {
			return nil, errors.New("invalid attribute length")
		}
		rest = rest[l:]
	}
	p := &radius.Packet{Code: radius.Code(b[0]), Identifier: b[1], Secret: secret}
	copy(p.Authenticator[:], b[4:20])
	if n == 0 {
		return p, nil
	}
	data := bytes.Clone(raw)
	avps := make([]radius.AVP, n)
	p.Attributes = make(radius.Attributes, n)
	for i, rest := 0, data; i < n; i++ {
		l := int(rest[1])
		avps[i].Type = radius.Type(rest[0])
		if l > 2 {
			avps[i].Attribute = radius.Attribute(rest[2:l:l]) // capped: an append cannot reach the next one
		}
		p.Attributes[i] = &avps[i]
		rest = rest[l:]
	}
	return p, nil
}

func integer(p *radius.Packet, t radius.Type) (uint32, bool) {
	v, ok := p.Lookup(t)
	if !ok || len(v) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(v), true
}

// framedPrefixes returns the session's addresses: Framed-IP-Address as a
// /32 (the special values 0.0.0.0, 255.255.255.254 and 255.255.255.255,
// RFC 2865 section 5.8, are not addresses) and Framed-IPv6-Prefix at its
// own length (RFC 3162 section 2.3: usually a /64, a delegated /56 or /48
// is the subscriber's whole; a zero length is not an address).
func framedPrefixes(p *radius.Packet) []netip.Prefix {
	var out []netip.Prefix
	for _, avp := range p.Attributes {
		switch avp.Type {
		case rfc2865.FramedIPAddress_Type:
			if len(avp.Attribute) != 4 {
				continue
			}
			a := netip.AddrFrom4([4]byte(avp.Attribute))
			if a.IsUnspecified() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || a == netip.AddrFrom4([4]byte{255, 255, 255, 254}) {
				continue
			}
			out = appendPrefix(out, netip.PrefixFrom(a, 32))
		case typeFramedIPv6Prefix:
			v := avp.Attribute
			if len(v) < 2 || len(v) > 18 || v[1] == 0 || int(v[1]) > 128 {
				continue
			}
			var ip [16]byte
			copy(ip[:], v[2:])
			a := netip.AddrFrom16(ip)
			if a.IsUnspecified() || a.Is4In6() {
				continue
			}
			pfx, err := a.Prefix(int(v[1]))
			if err != nil {
				continue
			}
			out = appendPrefix(out, pfx)
		}
	}
	return out
}

func appendPrefix(ps []netip.Prefix, p netip.Prefix) []netip.Prefix {
	for _, q := range ps {
		if q == p {
			return ps
		}
	}
	return append(ps, p)
}

// imsi returns the 3GPP-IMSI vendor attribute (digits only) or "".
func imsi(p *radius.Packet) string {
	for _, avp := range p.Attributes {
		if avp.Type != rfc2865.VendorSpecific_Type || len(avp.Attribute) < 6 {
			continue
		}
		v := avp.Attribute
		if binary.BigEndian.Uint32(v[:4]) != vendor3GPP {
			continue
		}
		for sub := v[4:]; len(sub) >= 2; {
			t, l := sub[0], int(sub[1])
			if l < 2 || l > len(sub) {
				break
			}
			val := sub[2:l]
			if t == vendor3GPPIMSI && len(val) >= 5 && len(val) <= 15 && allDigits(val) {
				return string(val)
			}
			sub = sub[l:]
		}
	}
	return ""
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// authenticRequest checks the Accounting-Request's Request Authenticator
// (RFC 2866 section 3): MD5(Code+Identifier+Length+16 zero octets+
// Attributes+Secret), compared in constant time.
func authenticRequest(b, secret []byte) bool {
	if len(b) < 20 || len(secret) == 0 {
		return false
	}
	h := md5.New()
	h.Write(b[:4])
	var zero [16]byte
	h.Write(zero[:])
	h.Write(b[20:])
	h.Write(secret)
	return hmac.Equal(h.Sum(nil), b[4:20])
}

// verifyMessageAuthenticator checks Message-Authenticator (RFC 3579 section
// 3.2, clarified by RFC 5080): HMAC-MD5 keyed by the secret over the packet
// with the attribute's value set to zeros and, since the Request
// Authenticator of an Accounting-Request is itself computed over the
// attributes, with the authenticator field zeroed too (as RFC 5176 section
// 3.4 specifies for CoA-Request, and as FreeRADIUS does for accounting). present is false when the packet
// has none; more than one is invalid.
func verifyMessageAuthenticator(b []byte, p *radius.Packet, secret []byte) (ok, present bool) {
	count := 0
	for _, avp := range p.Attributes {
		if avp.Type == rfc2869.MessageAuthenticator_Type {
			count++
		}
	}
	if count == 0 {
		return false, false
	}
	if count > 1 {
		return false, true
	}
	msg := bytes.Clone(b)
	clear(msg[4:20])
	var got []byte
	for off := 20; off+2 <= len(msg); {
		t, l := msg[off], int(msg[off+1])
		if l < 2 || off+l > len(msg) {
			return false, true
		}
		if radius.Type(t) == rfc2869.MessageAuthenticator_Type {
			if l != 18 {
				return false, true
			}
			got = bytes.Clone(msg[off+2 : off+18])
			clear(msg[off+2 : off+18])
		}
		off += l
	}
	if got == nil {
		return false, true
	}
	mac := hmac.New(md5.New, secret)
	mac.Write(msg)
	return hmac.Equal(mac.Sum(nil), got), true
}

// MessageAuthenticator computes the Message-Authenticator value for an
// encoded Accounting-Request whose Message-Authenticator attribute holds 16
// zero octets (as above). Gateways' simulators and tests use it.
func MessageAuthenticator(b, secret []byte) []byte {
	msg := bytes.Clone(b)
	if len(msg) >= 20 {
		clear(msg[4:20])
	}
	mac := hmac.New(md5.New, secret)
	mac.Write(msg)
	return mac.Sum(nil)
}

// FNV-1a (32 bits), written out so that hashing allocates nothing.
const (
	fnvOffset = 2166136261
	fnvPrime  = 16777619
)

// shardOfString is the shard hash of a key.
func shardOfString(key string) uint32 {
	h := uint32(fnvOffset)
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * fnvPrime
	}
	return h
}

// shardOfPrefix is the shard hash of a subscriber's prefix: its address's
// 16 octets (IPv4 as mapped) and its length.
func shardOfPrefix(p netip.Prefix) uint32 {
	h := uint32(fnvOffset)
	a := p.Addr().As16()
	for _, c := range a {
		h = (h ^ uint32(c)) * fnvPrime
	}
	return (h ^ uint32(p.Bits())) * fnvPrime
}
