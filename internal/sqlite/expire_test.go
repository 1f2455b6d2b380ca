package sqlite

import (
	"strings"
	"testing"
)

// TestExpireQueryPlan: expiry finds old sessions through the (client,
// updated_at) index, one client at a time, there being no index on
// updated_at alone (migration 8); which rows it removes is the conformance
// suite's NetworkSessionExpire cases.
func TestExpireQueryPlan(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	rows, err := s.query(ctx, "EXPLAIN QUERY PLAN "+expireQuery, int64(0))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if p := strings.Join(plan, "; "); !strings.Contains(p, "INDEX network_sessions_client (client=? AND updated_at<?)") ||
		strings.Contains(p, "SCAN network_sessions") {
		t.Errorf("expiry's plan: %s; want the (client, updated_at) index, no table scan", p)
	}
}
