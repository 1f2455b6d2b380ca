package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/loadgen"
	"github.com/numbergate/numbergate/internal/sqlite"
	"github.com/numbergate/numbergate/internal/testdisk"
)

// TestServeFullDisk (issue 12 item 2): `serve` keeps its data on a small
// filesystem the test fills up. While it is full, every edge answers that
// the service is unavailable and acknowledges nothing: the API 503
// UNAVAILABLE, /token 503 temporarily_unavailable, /authorize a redirect
// with error=temporarily_unavailable, RADIUS no Accounting-Response,
// /readyz not ready. Nothing half-written is left: the token, the code and
// the accounting request that failed all work once space is back, and the
// node becomes ready again by itself, without traffic or a restart.
//
// A long reader holds a snapshot of the database meanwhile, so the
// write-ahead log cannot be recycled and every commit needs new space (as
// on a disk that stays full); without it, SQLite would still take some
// writes into the log's old space.
func TestServeFullDisk(t *testing.T) {
	disk := testdisk.Mount(t, 8<<20)
	o := startOutageNode(t, disk, "", "full-disk-gw", 94)
	ctx := context.Background()

	db, err := sql.Open("sqlite", "file:"+filepath.Join(disk, "data", sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reader, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var x int
	if err := reader.QueryRow("SELECT count(*) FROM clients").Scan(&x); err != nil {
		t.Fatal(err)
	}
	free := testdisk.Fill(t, disk)

	// RADIUS: a Start is not acknowledged (the first one or two may still
	// fit in the log's last page).
	var lost loadgen.Request
	var lostPkt []byte
	for i := 1; i <= 10 && lostPkt == nil; i++ {
		r := loadgen.Request{Status: loadgen.Start, Addr: netip.AddrFrom4([4]byte{127, 0, 95, byte(i)}),
			MSISDN: "+34600095001", SessionID: "full-" + string(rune('a'+i))}
		pkt, err := o.gw.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		switch err := o.gw.SendPacket(ctx, pkt); {
		case errors.Is(err, loadgen.ErrNoAnswer):
			lost, lostPkt = r, pkt
		case err != nil:
			t.Fatal(err)
		}
	}
	if lostPkt == nil {
		t.Fatal("10 accounting Starts acknowledged on a full disk")
	}
	o.checkUnavailable(t, "on a full disk", func(se *loadgen.StepError) bool {
		return se.Code == "temporarily_unavailable" && se.Status == http.StatusSeeOther
	})

	// Space comes back; the node recovers by itself.
	free()
	_ = reader.Rollback()
	o.checkRecovered(t, "space came back", lost, lostPkt)
	if _, err := o.flow.Run(ctx, o.dev); err != nil {
		t.Errorf("flow after recovery: %v", err)
	}
}

// outageNode is what the store-outage tests share (the full disk above,
// the PostgreSQL outage in e2e_pgoutage_test.go): a node with RADIUS and
// one static device, and what was pending when the store went away: a
// token issued and not yet used, a code not yet redeemed.
type outageNode struct {
	n       *servedNode
	flow    *loadgen.Flow
	dev     *loadgen.Device
	gw      *loadgen.Gateway
	unspent string
	code    loadgen.Authorization
}

// startOutageNode starts serve in dir with storeYAML (the store section,
// or "" for SQLite in dir), a RADIUS client with secret and the device
// 127.0.octet.1 (+34600<octet>001), and leaves a token and a code pending.
func startOutageNode(t *testing.T, dir, storeYAML, secret string, octet byte) *outageNode {
	t.Helper()
	pc := udpConn(t)
	addr := fmt.Sprintf("127.0.%d.1", octet)
	number := fmt.Sprintf("+34600%03d001", octet)
	n := startServeWith(t, dir, storeYAML+`network:
  radius:
    listen: 127.0.0.1:0
    clients:
      - cidr: 127.0.0.0/8
        secret: "`+secret+`"
    idle_timeout: 1h
  static:
    - prefix: `+addr+`/32
      msisdn: "`+number+`"
`, serveListeners{radius: pc})
	p := onboard(t, n, "app-outage", addr)
	o := &outageNode{n: n,
		flow: &loadgen.Flow{Client: loadgen.Client{Issuer: n.issuer, ID: p.clientID, RedirectURI: p.redirect, Key: p.key}},
		dev:  &loadgen.Device{MSISDN: number, Source: netip.MustParseAddr(addr)},
		// Short: a Start during the outage must go unanswered.
		gw: &loadgen.Gateway{Server: pc.LocalAddr().String(), Secret: []byte(secret),
			Source: netip.AddrFrom4([4]byte{127, 0, octet, 100}), Timeout: 500 * time.Millisecond},
	}
	ctx := context.Background()
	if _, err := o.flow.Run(ctx, o.dev); err != nil {
		t.Fatalf("flow before the outage: %v", err)
	}
	a1, err := o.flow.Authorize(ctx, o.dev)
	if err != nil {
		t.Fatal(err)
	}
	as1, _, _ := o.flow.Assertion()
	tok, err := o.flow.Exchange(ctx, a1.Code, a1.Verifier, as1)
	if err != nil || tok.Status != 200 {
		t.Fatalf("token: %+v %v", tok, err)
	}
	o.unspent = tok.AccessToken
	if o.code, err = o.flow.Authorize(ctx, o.dev); err != nil {
		t.Fatal(err)
	}
	return o
}

// checkUnavailable checks the answers while the store is away: /readyz
// 503, the API 503 UNAVAILABLE, /token 503 temporarily_unavailable, and
// /authorize as authorizeOK accepts.
func (o *outageNode) checkUnavailable(t *testing.T, during string, authorizeOK func(*loadgen.StepError) bool) {
	t.Helper()
	ctx := context.Background()
	if status, body := get(t, o.n.admin+"/readyz"); status != http.StatusServiceUnavailable {
		t.Errorf("/readyz %s: %d %s, want 503", during, status, body)
	}
	if v, err := o.flow.Verify(ctx, o.unspent, o.dev.MSISDN); err != nil || v.Status != http.StatusServiceUnavailable || v.Code != "UNAVAILABLE" {
		t.Errorf("verify %s: %+v %v, want 503 UNAVAILABLE", during, v, err)
	}
	as2, _, _ := o.flow.Assertion()
	if tr, err := o.flow.Exchange(ctx, o.code.Code, o.code.Verifier, as2); err != nil || tr.Status != http.StatusServiceUnavailable || tr.Error != "temporarily_unavailable" {
		t.Errorf("token %s: %+v %v, want 503 temporarily_unavailable", during, tr, err)
	}
	_, err := o.flow.Authorize(ctx, o.dev)
	var se *loadgen.StepError
	if !errors.As(err, &se) || !authorizeOK(se) {
		t.Errorf("authorize %s: %v, want temporarily_unavailable", during, err)
	}
	if t.Failed() {
		t.Logf("server log:\n%s", o.n.logs.String())
	}
}

// checkRecovered waits for /readyz and checks that what failed was not
// half-done: the token, the code and the unacknowledged Start (lostPkt,
// retransmitted) all work now.
func (o *outageNode) checkRecovered(t *testing.T, after string, lost loadgen.Request, lostPkt []byte) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(answerWait)
	for {
		status, body := get(t, o.n.admin+"/readyz")
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d %s %s after %s", status, body, answerWait, after)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v, err := o.flow.Verify(ctx, o.unspent, o.dev.MSISDN); err != nil || v.Status != http.StatusOK || v.Verified == nil || !*v.Verified {
		t.Errorf("the token whose verify failed: %+v %v, want 200 verified", v, err)
	}
	as3, _, _ := o.flow.Assertion()
	if tr, err := o.flow.Exchange(ctx, o.code.Code, o.code.Verifier, as3); err != nil || tr.Status != http.StatusOK {
		t.Errorf("the code whose /token failed: %+v %v, want 200", tr, err)
	}
	// The gateway retransmits (waiting as long as a loaded machine needs).
	o.gw.Timeout = answerWait
	if err := o.gw.SendPacket(ctx, lostPkt); err != nil {
		t.Fatalf("the unacknowledged Start, retransmitted: %v", err)
	}
	if _, err := o.flow.Run(ctx, &loadgen.Device{MSISDN: lost.MSISDN, Source: lost.Addr}); err != nil {
		t.Errorf("flow from the address of the retransmitted Start: %v", err)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}
