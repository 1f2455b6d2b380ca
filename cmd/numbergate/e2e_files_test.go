package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/numbergate/numbergate/internal/sandbox"
	"github.com/numbergate/numbergate/internal/sqlite"
	"github.com/numbergate/numbergate/internal/testlog"
)

// TestSandboxTightensFileModes: issue 6 item 14. A sandbox data directory,
// database and sandbox-client.json (a private JWK) left readable by others
// are restricted to their owner on the next start, with a warning.
func TestSandboxTightensFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sandbox-data")
	runOnce := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		logs := &testlog.Buffer{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		ready := make(chan struct{})
		go func() {
			done <- runSandboxOn(ctx, ln, "http://"+ln.Addr().String(), dir, slog.New(slog.NewJSONHandler(logs, nil)), io.Discard, func() { close(ready) })
		}()
		select {
		case <-ready:
		case err := <-done:
			t.Fatalf("sandbox did not start: %v", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return logs.String()
	}
	runOnce()
	creds := filepath.Join(dir, sandbox.CredentialsFile)
	db := filepath.Join(dir, sqlite.FileName)
	for path, mode := range map[string]os.FileMode{dir: 0o755, creds: 0o644, db: 0o644} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	logs := runOnce()
	for path, want := range map[string]os.FileMode{dir: 0o700, creds: 0o600, db: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", filepath.Base(path), fi.Mode().Perm(), want)
		}
	}
	if !strings.Contains(logs, "restricted to its owner") || !strings.Contains(logs, "mode 0755 -> 0700") {
		t.Errorf("no warning about the tightened modes:\n%s", logs)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "."+sandbox.CredentialsFile) {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}
