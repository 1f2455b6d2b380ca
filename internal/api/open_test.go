package api_test

import (
	"testing"

	"github.com/numbergate/numbergate/internal/nv"
)

// openStore gives each test its own token store.
func openStore(t testing.TB) nv.TokenStore {
	t.Helper()
	return newMemTokens()
}
