package radius

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"

	"github.com/numbergate/numbergate/internal/benchcpu"
)

func benchStart(b *testing.B, i int) []byte {
	p := radius.New(radius.CodeAccountingRequest, []byte(testSecret))
	rfc2866.AcctStatusType_Add(p, rfc2866.AcctStatusType_Value_Start)
	rfc2866.AcctSessionID_AddString(p, fmt.Sprint("bench-", i))
	rfc2865.CallingStationID_AddString(p, fmt.Sprintf("+3469%08d", i))
	rfc2865.FramedIPAddress_Add(p, net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)).To4())
	rfc2865.NASIPAddress_Add(p, net.IPv4(127, 0, 0, 1).To4())
	p.Identifier = byte(i)
	out, err := p.Encode()
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkDecode is the reading goroutine's share of a packet: client
// lookup, authenticator check, attribute decoding (no store).
func BenchmarkDecode(b *testing.B) {
	pkt := benchStart(b, 1)
	client := Client{CIDR: netip.MustParsePrefix("127.0.0.0/8"), Secret: []byte(testSecret)}
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	b.ReportAllocs()
	for b.Loop() {
		if _, reason, detail := decode(pkt, client, from); reason != "" {
			b.Fatal(reason, detail)
		}
	}
}

// BenchmarkAccounting is whole RADIUS packet handling over UDP loopback:
// decode, authenticate, store the session through the SQLite group commit
// (synchronous=FULL) and answer, from 1 and 64 gateways with one Start in
// flight each. It reports the p99 round trip.
func BenchmarkAccounting(b *testing.B) {
	for _, gateways := range []int{1, 64} {
		b.Run(fmt.Sprintf("gateways=%d", gateways), func(b *testing.B) {
			srv, err := New(Config{Clients: []Client{{CIDR: netip.MustParsePrefix("127.0.0.0/8"), Secret: []byte(testSecret)}},
				IdleTimeout: time.Hour}, openStore(b), Options{})
			if err != nil {
				b.Fatal(err)
			}
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer pc.Close()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ctx, pc) }()
			defer func() { cancel(); <-done }()

			pkts := make([][]byte, b.N)
			for i := range pkts {
				pkts[i] = benchStart(b, i)
			}
			var next atomic.Int64
			var mu sync.Mutex
			var lats []time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			cpu := benchcpu.Start(b)
			var wg sync.WaitGroup
			for range gateways {
				wg.Go(func() {
					c, err := net.DialUDP("udp", nil, pc.LocalAddr().(*net.UDPAddr))
					if err != nil {
						b.Error(err)
						return
					}
					defer c.Close()
					buf := make([]byte, 4096)
					var mine []time.Duration
					for {
						i := int(next.Add(1)) - 1
						if i >= len(pkts) {
							break
						}
						t0 := time.Now()
						for try := 0; ; try++ {
							c.Write(pkts[i])
							c.SetReadDeadline(time.Now().Add(2 * time.Second))
							if _, err := c.Read(buf); err == nil {
								break
							} else if try == 3 {
								b.Errorf("packet %d: no answer after 4 tries: %v", i, err)
								return
							}
						}
						mine = append(mine, time.Since(t0))
					}
					mu.Lock()
					lats = append(lats, mine...)
					mu.Unlock()
				})
			}
			wg.Wait()
			b.StopTimer()
			cpu()
			slices.Sort(lats)
			if len(lats) > 0 {
				b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds()), "p99-µs")
			}
		})
	}
}
