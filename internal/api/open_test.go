package api_test

import (
	"context"
	"testing"

	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/sqlite"
)

// openStore gives each test its own real SQLite store in a temporary
// directory.
func openStore(t testing.TB) nv.TokenStore {
	t.Helper()
	s, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
