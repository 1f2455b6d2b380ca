package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/sqlite"
)

const killDirEnv = "NUMBERGATE_SQLITE_KILL_DIR"

// TestMain lets the test binary act as the writer process killed by
// TestKillAcknowledgedWritesSurvive.
func TestMain(m *testing.M) {
	if dir := os.Getenv(killDirEnv); dir != "" {
		killChild(dir, os.Getenv(killDirEnv+"_ROUND"))
		return
	}
	os.Exit(m.Run())
}

// killChild writes tokens from 32 goroutines through the group-commit path
// and prints each hash once SaveToken has returned, until it is killed.
func killChild(dir, round string) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := 0; ; i++ {
				h := fmt.Sprintf("r%s-g%02d-%08d", round, g, i)
				now := time.Now()
				err := s.SaveToken(ctx, nv.AccessToken{Hash: h, ClientID: "app", MSISDN: "+34600000001",
					Scopes: []string{nv.ScopeVerify}, AuthMethod: nv.AuthNetwork, IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintln(out, h)
				out.Flush() // acknowledged: the parent may rely on it
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestKillAcknowledgedWritesSurvive kills (SIGKILL) a process writing
// through the group-commit path at full speed, several times on the same
// database, and checks after each that every write it acknowledged is
// there and the database is sound.
func TestKillAcknowledgedWritesSurvive(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a child process repeatedly")
	}
	dir := t.TempDir()
	var acked []string
	for round := range 5 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), killDirEnv+"="+dir, fmt.Sprintf("%s_ROUND=%d", killDirEnv, round))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1<<16)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Let it write for a while (at least some acknowledgements), then kill.
		deadline := time.After(time.Duration(150+rand.IntN(300)) * time.Millisecond)
		n, late := 0, false
		giveUp := time.After(30 * time.Second)
	read:
		for !late || n == 0 {
			select {
			case l, ok := <-lines:
				if !ok {
					break read
				}
				acked = append(acked, l)
				n++
			case <-deadline:
				late = true
			case <-giveUp:
				break read
			}
		}
		cmd.Process.Signal(syscall.SIGKILL) // fails only if it already exited (then stderr says why)
		for l := range lines {              // acknowledged before the kill, read after it
			acked = append(acked, l)
		}
		cmd.Wait()
		if stderr.Len() > 0 {
			t.Fatalf("round %d: writer failed: %s", round, stderr.String())
		}

		s, err := sqlite.Open(t.Context(), dir)
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		missing := 0
		for _, h := range acked {
			if _, err := s.Token(t.Context(), h); err != nil {
				missing++
				if missing <= 5 {
					t.Errorf("round %d: acknowledged token %s lost: %v", round, h, err)
				}
			}
		}
		if missing > 0 {
			t.Fatalf("round %d: %d of %d acknowledged writes lost", round, missing, len(acked))
		}
		if err := s.Ping(t.Context()); err != nil {
			t.Errorf("round %d: %v", round, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d writes acknowledged in total, all found", round, len(acked))
	}
	if len(acked) == 0 {
		t.Fatal("the writer acknowledged nothing")
	}
}
