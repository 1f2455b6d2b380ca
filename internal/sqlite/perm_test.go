package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/numbergate/numbergate/internal/sqlite"
)

// TestOpenTightensModes: issue 6 item 14. A data directory and database
// left readable by others (0755, 0644: a copy, a restore, a permissive
// umask) are restricted to their owner when the store opens, and Open says
// what it changed.
func TestOpenTightensModes(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	s, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Tightened(); len(got) != 0 {
		t.Errorf("fresh store tightened %q", got)
	}
	s.Close()
	db := filepath.Join(dir, sqlite.FileName)
	for path, mode := range map[string]os.FileMode{dir: 0o755, db: 0o644} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(db+"-wal", nil, 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chmod(db+"-wal", 0o666) // past the umask

	s, err = sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for path, want := range map[string]os.FileMode{dir: 0o700, db: 0o600, db + "-wal": 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", path, fi.Mode().Perm(), want)
		}
	}
	got := strings.Join(s.Tightened(), "\n")
	for _, w := range []string{dir + ": mode 0755 -> 0700", db + ": mode 0644 -> 0600", db + "-wal: mode 0666 -> 0600"} {
		if !strings.Contains(got, w) {
			t.Errorf("Tightened lacks %q:\n%s", w, got)
		}
	}
	if fi, _ := os.Stat(db + "-shm"); fi != nil && fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("-shm mode %04o", fi.Mode().Perm())
	}
}
