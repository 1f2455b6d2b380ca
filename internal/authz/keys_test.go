package authz

import (
	"context"
	"testing"

	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/sqlite"
)

// lateStore hides every key on its first read, as a node sees the store
// when it loads just before another node, started at the same moment,
// stores its keys.
type lateStore struct {
	nv.KeyStore
	reads int
}

func (s *lateStore) SigningKeys(ctx context.Context) ([]nv.SigningKey, error) {
	s.reads++
	if s.reads == 1 {
		return nil, nil
	}
	return s.KeyStore.SigningKeys(ctx)
}

// TestNodesStartingTogetherShareOneFirstKey: two nodes that start at once
// on an empty store end with one signing key, the same on both, not one
// each (each node would sign with its own and not publish the other's
// until its next reload).
func TestNodesStartingTogetherShareOneFirstKey(t *testing.T) {
	st, err := sqlite.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a, err := loadOrCreateKeys(t.Context(), st)
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadOrCreateKeys(t.Context(), &lateStore{KeyStore: st})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.all) != 1 || len(b.all) != 1 || a.all[0].ID != b.all[0].ID {
		t.Errorf("node A has %v, node B %v; want the same single key", ids(a.all), ids(b.all))
	}
	if string(a.pairwise) != string(b.pairwise) {
		t.Error("the nodes derive subjects from different pairwise secrets")
	}
	all, err := st.SigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 { // the signing key and the pairwise secret
		t.Errorf("the store holds %d keys, want one signing key and the pairwise secret", len(all))
	}
}

func ids(ks []nv.SigningKey) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.ID)
	}
	return out
}
