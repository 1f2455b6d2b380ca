package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/loadgen"
)

// TestGracefulStop (issue 12 item 3): SIGTERM while RADIUS accounting and
// complete flows run at full speed. The server answers each request in
// flight correctly or not at all (a wrong answer fails the test even
// during the drain), exits 0 within its drain time, and after a restart on
// the same data everything it acknowledged is there, as TestCrash checks:
// nothing was acknowledged without being stored.
func TestGracefulStop(t *testing.T) {
	if testing.Short() {
		t.Skip("graceful stop test skipped in -short mode")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	const devices = 16
	n := newProcNode(t, 96, devices, "")
	var devs []*loadgen.Device
	for i := 1; i <= devices; i++ {
		devs = append(devs, procDevice(96, i))
	}
	var gws []*loadgen.Gateway
	for i := 1; i <= 8; i++ {
		gws = append(gws, &loadgen.Gateway{Server: n.radius, Secret: []byte(procSecret),
			Source: netip.AddrFrom4([4]byte{127, 0, 97, byte(i)}), Timeout: 500 * time.Millisecond})
	}
	var subs []loadgen.Subscriber
	for i := range 256 {
		subs = append(subs, loadgen.Subscriber{Addr: netip.AddrFrom4([4]byte{10, 96, byte(i / 250), byte(i%250 + 1)}),
			MSISDN: fmt.Sprintf("+34696%06d", i)})
	}
	acc := &loadgen.Accounting{Gateways: gws, Subscribers: subs, Interims: 2, SessionPrefix: "drain"}
	flow := &loadgen.Flow{Client: n.client}

	n.start()
	var total crashChecked
	acked := 0
	for round := 1; round <= 2; round++ {
		load := time.Duration(rng.IntN(900)) * time.Millisecond
		var took time.Duration
		flows, rep := loadThenStop(t, acc, flow, devs, load, func() {
			var err error
			// A hang past the drain time fails here; how much of it a
			// loaded machine uses is logged, not asserted.
			took, err = n.terminate(drainTimeout + answerWait)
			if err != nil {
				t.Errorf("round %d: serve exited with %v after SIGTERM, want status 0", round, err)
			}
		}, true)
		n.checkLogs()
		ready := n.start()
		n.sqliteIntegrity()
		c := checkAfterCrash(t, n, flow, devs[0], flows, rep)
		acked += rep.Acked
		total.codes += c.codes
		total.tokens += c.tokens
		t.Logf("round %d: SIGTERM %s after the first acknowledgements, exited in %s; %d accounting requests acknowledged; %d codes redeemed, %d tokens spent; ready again in %s",
			round, load, took, rep.Acked, c.codes, c.tokens, ready)
		if t.Failed() {
			t.Logf("server output:\n%s", n.logs.String())
			return
		}
	}
	if acked == 0 || total.codes == 0 {
		t.Fatalf("the load acknowledged nothing to check (%d accounting, %d codes)", acked, total.codes)
	}
}
