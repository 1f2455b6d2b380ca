package radius

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"

	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/sqlite"
)

// startPGW serves the gateway "pgw" at 127.0.0.1, on the real clock, from
// st on a loopback socket until the test ends.
func startPGW(t *testing.T, st *sqlite.Store) (*Server, net.PacketConn) {
	t.Helper()
	srv, err := New(Config{Clients: []Client{{Name: "pgw", CIDR: netip.MustParsePrefix("127.0.0.1/32"), Secret: []byte(testSecret)}},
		IdleTimeout: time.Hour}, st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return srv, serveOnLoopback(t, srv, nil)
}

// TestAccountingOnBurst: a rebooted gateway sends Accounting-On, then the
// Starts of all its subscribers at once, from many sockets. With the store
// workers sharing group commits, every Start the server acknowledged is
// stored afterwards (none purged by the On, none lost in a batch), and the
// sessions from before the On are gone.
func TestAccountingOnBurst(t *testing.T) {
	const subs = 600
	st := openStore(t)
	srv, pc := startPGW(t, st)

	addr := func(i int) string { return fmt.Sprintf("10.7.%d.%d", i/250, i%250+1) }
	packet := func(status rfc2866.AcctStatusType, i int, session string) *radius.Packet {
		p := radius.New(radius.CodeAccountingRequest, []byte(testSecret))
		rfc2866.AcctStatusType_Add(p, status)
		rfc2865.NASIPAddress_Add(p, net.IPv4(127, 0, 0, 1).To4())
		if status != rfc2866.AcctStatusType_Value_AccountingOn {
			rfc2866.AcctSessionID_AddString(p, session)
			rfc2865.CallingStationID_AddString(p, fmt.Sprintf("+3460070%04d", i))
			rfc2865.FramedIPAddress_Add(p, net.ParseIP(addr(i)).To4())
		}
		return p
	}
	exchange := func(p *radius.Packet) error {
		ctx, cancel := context.WithTimeout(context.Background(), answerWait)
		defer cancel()
		_, err := (&radius.Client{Retry: 300 * time.Millisecond}).Exchange(ctx, p, pc.LocalAddr().String())
		return err
	}
	// Sessions from before the reboot (the first half of the subscribers).
	for i := range subs / 2 {
		if err := exchange(packet(rfc2866.AcctStatusType_Value_Start, i, "before")); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(10 * time.Millisecond) // the On arrives strictly after them

	if err := exchange(packet(rfc2866.AcctStatusType_Value_AccountingOn, 0, "")); err != nil {
		t.Fatal(err)
	}
	// The burst: every subscriber starts again, 32 senders at once.
	acked := make([]bool, subs)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range next {
				acked[i] = exchange(packet(rfc2866.AcctStatusType_Value_Start, i, "after")) == nil
			}
		})
	}
	for i := range subs {
		next <- i
	}
	close(next)
	wg.Wait()

	n := 0
	for i := range subs {
		if !acked[i] {
			continue
		}
		n++
		s, err := st.SessionFor(context.Background(), netip.MustParseAddr(addr(i)), time.Time{})
		if err != nil || s.SessionID != "after" || s.MSISDN != nv.PhoneNumber(fmt.Sprintf("+3460070%04d", i)) {
			t.Errorf("acknowledged Start for %s: stored %+v, %v", addr(i), s, err)
		}
	}
	if n < subs*9/10 {
		t.Errorf("only %d of %d Starts acknowledged", n, subs)
	}
	if srv.QueueDepth() != 0 {
		t.Errorf("QueueDepth after the burst = %d", srv.QueueDepth())
	}
}

// TestOrderPerAddress: a Start and the Stop that follows it, sent back to
// back for many addresses without waiting for the first answer, are applied
// in that order (same worker for one address), so no session is left, while
// the workers of different addresses share group commits.
func TestOrderPerAddress(t *testing.T) {
	const subs = 120 // 240 packets: identifiers stay distinct
	st := openStore(t)
	_, pc := startPGW(t, st)
	conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.1")}, pc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var id byte
	encode := func(status rfc2866.AcctStatusType, i int) []byte {
		p := radius.New(radius.CodeAccountingRequest, []byte(testSecret))
		id++
		p.Identifier = id
		rfc2866.AcctStatusType_Add(p, status)
		rfc2866.AcctSessionID_AddString(p, fmt.Sprint("o-", i))
		rfc2865.CallingStationID_AddString(p, fmt.Sprintf("+3460080%04d", i))
		rfc2865.FramedIPAddress_Add(p, net.IPv4(10, 8, byte(i/250), byte(i%250+1)).To4())
		rfc2865.NASIPAddress_Add(p, net.IPv4(127, 0, 0, 1).To4())
		b, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	answered := map[byte]bool{}
	want := 0
	for i := range subs {
		for _, s := range []rfc2866.AcctStatusType{rfc2866.AcctStatusType_Value_Start, rfc2866.AcctStatusType_Value_Stop} {
			if _, err := conn.Write(encode(s, i)); err != nil {
				t.Fatal(err)
			}
			want++
		}
		if i%50 == 49 { // let the socket buffer drain now and then
			time.Sleep(5 * time.Millisecond)
		}
	}
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(answerWait))
	for len(answered) < want {
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		if n >= 2 {
			answered[buf[1]] = true
		}
	}
	if len(answered) < want {
		t.Fatalf("%d of %d packets answered", len(answered), want)
	}
	ss, err := st.NetworkSessions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 0 {
		t.Errorf("%d sessions left after Start+Stop of each address (a Stop overtook its Start), e.g. %+v", len(ss), ss[0])
	}
}
