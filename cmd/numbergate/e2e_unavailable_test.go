package main

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"net"
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
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := startServeWith(t, disk, `network:
  radius:
    listen: 127.0.0.1:0
    clients:
      - cidr: 127.0.0.0/8
        secret: "full-disk-gw"
    idle_timeout: 1h
  static:
    - prefix: 127.0.94.1/32
      msisdn: "+34600094001"
`, serveListeners{radius: pc})
	p := onboard(t, n, "app-full", "127.0.94.1")
	flow := &loadgen.Flow{Client: loadgen.Client{Issuer: n.issuer, ID: p.clientID, RedirectURI: p.redirect, Key: p.key}}
	dev := &loadgen.Device{MSISDN: "+34600094001", Source: netip.MustParseAddr("127.0.94.1")}
	ctx := context.Background()
	gw := &loadgen.Gateway{Server: pc.LocalAddr().String(), Secret: []byte("full-disk-gw"),
		Source: netip.MustParseAddr("127.0.94.100"), Timeout: 300 * time.Millisecond}

	// Before the disk fills: a token issued and not yet used, a code not
	// yet redeemed.
	if _, err := flow.Run(ctx, dev); err != nil {
		t.Fatalf("flow on a healthy disk: %v", err)
	}
	a1, err := flow.Authorize(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	as1, _, _ := flow.Assertion()
	tok, err := flow.Exchange(ctx, a1.Code, a1.Verifier, as1)
	if err != nil || tok.Status != 200 {
		t.Fatalf("token: %+v %v", tok, err)
	}
	unspent := tok.AccessToken
	a2, err := flow.Authorize(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}

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
		pkt, err := gw.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		switch err := gw.SendPacket(ctx, pkt); {
		case errors.Is(err, loadgen.ErrNoAnswer):
			lost, lostPkt = r, pkt
		case err != nil:
			t.Fatal(err)
		}
	}
	if lostPkt == nil {
		t.Fatal("10 accounting Starts acknowledged on a full disk")
	}

	if status, body := get(t, n.admin+"/readyz"); status != http.StatusServiceUnavailable {
		t.Errorf("/readyz on a full disk: %d %s, want 503", status, body)
	}
	if v, err := flow.Verify(ctx, unspent, dev.MSISDN); err != nil || v.Status != http.StatusServiceUnavailable || v.Code != "UNAVAILABLE" {
		t.Errorf("verify on a full disk: %+v %v, want 503 UNAVAILABLE", v, err)
	}
	as2, _, _ := flow.Assertion()
	if tr, err := flow.Exchange(ctx, a2.Code, a2.Verifier, as2); err != nil || tr.Status != http.StatusServiceUnavailable || tr.Error != "temporarily_unavailable" {
		t.Errorf("token on a full disk: %+v %v, want 503 temporarily_unavailable", tr, err)
	}
	_, err = flow.Authorize(ctx, dev)
	var se *loadgen.StepError
	if !errors.As(err, &se) || se.Code != "temporarily_unavailable" || se.Status != http.StatusSeeOther {
		t.Errorf("authorize on a full disk: %v, want a redirect with error=temporarily_unavailable", err)
	}
	if t.Failed() {
		t.Logf("server log:\n%s", n.logs.String())
	}

	// Space comes back; the node recovers by itself.
	free()
	_ = reader.Rollback()
	deadline := time.Now().Add(answerWait)
	for {
		status, body := get(t, n.admin+"/readyz")
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d %s %s after space came back", status, body, answerWait)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// What failed was not half-done: the token, the code and the Start
	// all work now.
	if v, err := flow.Verify(ctx, unspent, dev.MSISDN); err != nil || v.Status != http.StatusOK || v.Verified == nil || !*v.Verified {
		t.Errorf("the token whose verify failed: %+v %v, want 200 verified", v, err)
	}
	as3, _, _ := flow.Assertion()
	if tr, err := flow.Exchange(ctx, a2.Code, a2.Verifier, as3); err != nil || tr.Status != http.StatusOK {
		t.Errorf("the code whose /token failed: %+v %v, want 200", tr, err)
	}
	if err := gw.SendPacket(ctx, lostPkt); err != nil {
		t.Fatalf("the unacknowledged Start, retransmitted: %v", err)
	}
	radiusDev := &loadgen.Device{MSISDN: lost.MSISDN, Source: lost.Addr}
	if _, err := flow.Run(ctx, radiusDev); err != nil {
		t.Errorf("flow from the address of the retransmitted Start: %v", err)
	}
	if _, err := flow.Run(ctx, dev); err != nil {
		t.Errorf("flow after recovery: %v", err)
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
