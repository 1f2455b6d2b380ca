package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/sqlite"
	"github.com/numbergate/numbergate/internal/testdisk"
)

func session(i int) nv.NetworkSession {
	now := time.Now().UTC()
	return nv.NetworkSession{
		Prefix:    netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 32),
		MSISDN:    nv.PhoneNumber(fmt.Sprintf("+34600%06d", i)),
		SessionID: fmt.Sprintf("s-%d-with-some-length-to-fill-pages-%064d", i, i),
		NAS:       "gw", StartedAt: now, UpdatedAt: now,
	}
}

// TestFullDisk: on a filesystem that fills up, writes fail as
// nv.ErrUnavailable, a failed write leaves nothing visible, Ping reports
// the store unavailable, and once space is back Ping's probe write brings
// it back by itself and writes succeed again.
func TestFullDisk(t *testing.T) {
	ctx := context.Background()
	dir := testdisk.Mount(t, 2<<20)
	s, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.StartSession(ctx, session(0)); err != nil {
		t.Fatal(err)
	}
	release := sqlite.PinReader(t, dir)
	free := testdisk.Fill(t, dir)

	// The last bytes of the last page of the log may take a write or two;
	// then every write fails.
	var failed int
	var firstFail int
	for i := 1; i <= 50 && failed == 0; i++ {
		err := s.StartSession(ctx, session(i))
		if err == nil {
			continue
		}
		if !errors.Is(err, nv.ErrUnavailable) {
			t.Fatalf("write on a full disk: %v, want nv.ErrUnavailable", err)
		}
		failed, firstFail = 1, i
		t.Logf("write %d on the full disk: %v", i, err)
	}
	if failed == 0 {
		t.Fatal("50 writes succeeded on a full disk")
	}
	if _, err := s.SessionFor(ctx, session(firstFail).Prefix.Addr(), time.Time{}); !errors.Is(err, nv.ErrNotFound) {
		t.Errorf("the failed write is visible: %v", err)
	}
	if _, err := s.ConsumeToken(ctx, "unknown-hash", time.Now()); err == nil || (!errors.Is(err, nv.ErrUnavailable) && !errors.Is(err, nv.ErrNotFound)) {
		t.Errorf("ConsumeToken on a full disk: %v", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, nv.ErrUnavailable) {
		t.Errorf("Ping on a full disk: %v, want nv.ErrUnavailable", err)
	}
	// Reads still work.
	if _, err := s.SessionFor(ctx, session(0).Prefix.Addr(), time.Time{}); err != nil {
		t.Errorf("read on a full disk: %v", err)
	}

	free()
	release()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping once space is back: %v", err)
	}
	if err := s.StartSession(ctx, session(firstFail)); err != nil {
		t.Fatalf("write once space is back: %v", err)
	}
	if _, err := s.SessionFor(ctx, session(firstFail).Prefix.Addr(), time.Time{}); err != nil {
		t.Fatalf("the retried write: %v", err)
	}
}

// TestMaxPageCount: a database that may not grow (SQLite's max_page_count,
// no root needed) fails inserts as nv.ErrUnavailable and stores nothing of
// them; raising the limit lets the same writes through.
func TestMaxPageCount(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := sqlite.LimitPages(ctx, s, 0); err != nil {
		t.Fatal(err)
	}
	var fail int
	for i := range 2000 {
		err := s.StartSession(ctx, session(i))
		if err == nil {
			continue
		}
		if !errors.Is(err, nv.ErrUnavailable) {
			t.Fatalf("insert beyond max_page_count: %v, want nv.ErrUnavailable", err)
		}
		fail = i
		break
	}
	if fail == 0 {
		t.Fatal("2000 inserts into a database that may not grow")
	}
	if _, err := s.SessionFor(ctx, session(fail).Prefix.Addr(), time.Time{}); !errors.Is(err, nv.ErrNotFound) {
		t.Errorf("the failed insert is visible: %v", err)
	}
	if err := sqlite.LimitPages(ctx, s, 1<<30); err != nil {
		t.Fatal(err)
	}
	if err := s.StartSession(ctx, session(fail)); err != nil {
		t.Fatalf("insert after the limit was raised: %v", err)
	}
}
