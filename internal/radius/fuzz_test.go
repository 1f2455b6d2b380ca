package radius

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"net/netip"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"layeh.com/radius/rfc2866"

	"github.com/numbergate/numbergate/internal/nv"
)

// memSessions is a fast in-memory nv.NetworkSessionStore for the fuzz
// target (the UDP tests use the real SQLite store).
type memSessions struct {
	mu       sync.Mutex
	sessions map[netip.Prefix]nv.NetworkSession
}

func (m *memSessions) StartSession(_ context.Context, s nv.NetworkSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sessions[s.Prefix] = s
	return nil
}
func (m *memSessions) UpsertSession(_ context.Context, s nv.NetworkSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.sessions[s.Prefix]; ok && old.Client != s.Client && old.Client != "" {
		return nv.ErrNotFound
	}
	m.sessions[s.Prefix] = s
	return nil
}
func (m *memSessions) StopSession(_ context.Context, client string, p netip.Prefix, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.sessions[p]; ok && s.Client == client && s.SessionID == id {
		delete(m.sessions, p)
		return true, nil
	}
	return false, nil
}
func (m *memSessions) PurgeClient(_ context.Context, client string, before time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for p, s := range m.sessions {
		if s.Client == client && s.UpdatedAt.Before(before) {
			delete(m.sessions, p)
			n++
		}
	}
	return n, nil
}
func (m *memSessions) SessionFor(context.Context, netip.Addr, time.Time) (nv.NetworkSession, error) {
	return nv.NetworkSession{}, nv.ErrNotFound
}
func (m *memSessions) NetworkSessions(context.Context) ([]nv.NetworkSession, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []nv.NetworkSession
	for _, s := range m.sessions {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Prefix.String() < out[j].Prefix.String() })
	return out, nil
}
func (m *memSessions) ExpireSessions(context.Context, time.Time) (int, error) { return 0, nil }
func (m *memSessions) AllocatePortBlock(context.Context, nv.PortBlock) error  { return nil }
func (m *memSessions) ReleasePortBlock(context.Context, netip.Addr, netip.Addr, uint16, uint16, time.Time) (bool, error) {
	return false, nil
}
func (m *memSessions) PrivateAddrFor(context.Context, netip.AddrPort, time.Time) (netip.Addr, error) {
	return netip.Addr{}, nv.ErrNotFound
}

// sign makes b an authentic Accounting-Request for secret (code, length
// and Request Authenticator fixed up), so the fuzzer reaches the decoder.
func sign(b, secret []byte) []byte {
	b = append([]byte(nil), b...)
	if len(b) < 20 || len(b) > maxPacket {
		return b
	}
	b[0] = 4
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	clear(b[4:20])
	h := md5.New()
	h.Write(b)
	h.Write(secret)
	copy(b[4:20], h.Sum(nil))
	return b
}

// FuzzHandlePacket: arbitrary bytes as a packet never panic, are never
// answered and never change a session unless they are an authentic
// Accounting-Request; signed inputs exercise the attribute decoder, and
// what it drops changes nothing either.
func FuzzHandlePacket(f *testing.F) {
	secret := []byte(testSecret)
	for _, a := range []acct{
		{status: rfc2866.AcctStatusType_Value_Start, sessionID: "A", msisdn: "34600000001", ipv4: "10.0.0.5", nasIP: "192.0.2.1", imsi: "214070000000001"},
		{status: rfc2866.AcctStatusType_Value_Stop, sessionID: "A", ipv4: "10.0.0.5"},
		{status: rfc2866.AcctStatusType_Value_InterimUpdate, sessionID: "B", msisdn: "+34600000002", ipv6: "2001:db8::/64", msgAuth: "good"},
		{status: rfc2866.AcctStatusType_Value_AccountingOn, nasID: "pgw"},
	} {
		b, err := a.packet(&testing.T{}).Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Add([]byte{4, 0, 0, 20}, false)
	f.Add(make([]byte, 20), true)

	store := &memSessions{sessions: map[netip.Prefix]nv.NetworkSession{}}
	srv, err := New(Config{
		Clients:     []Client{{CIDR: netip.MustParsePrefix("127.0.0.0/8"), Secret: secret}},
		IdleTimeout: time.Hour,
	}, store, Options{Now: func() time.Time { return t0 }})
	if err != nil {
		f.Fatal(err)
	}
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	seed := nv.NetworkSession{Prefix: netip.MustParsePrefix("10.0.0.9/32"), MSISDN: "+34600000009", SessionID: "keep", NAS: "192.0.2.9", UpdatedAt: t0}

	f.Fuzz(func(t *testing.T, data []byte, signIt bool) {
		ctx := context.Background()
		store.mu.Lock()
		store.sessions = map[netip.Prefix]nv.NetworkSession{seed.Prefix: seed}
		store.mu.Unlock()
		srv.replay = newReplayCache(time.Hour, 16)
		if signIt {
			data = sign(data, secret)
		}
		before, _ := store.NetworkSessions(ctx)

		req, reply := srv.receive(data, from)
		if reply != nil {
			t.Fatal("answered from an empty replay cache")
		}
		authentic := len(data) >= 20 && authenticRequest(data[:min(len(data), int(binary.BigEndian.Uint16(data[2:4])))], secret)
		if req != nil && !authentic {
			t.Fatal("unauthenticated packet accepted")
		}
		if req != nil {
			if _, err := srv.apply(ctx, req); err != nil {
				t.Fatalf("apply: %v", err)
			}
			return // an authentic, well-formed request may change sessions
		}
		after, _ := store.NetworkSessions(ctx)
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("dropped packet changed sessions: %v -> %v", before, after)
		}
	})
}
