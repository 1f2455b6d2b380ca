package sqlite

import (
	"fmt"
	"strings"
	"testing"
)

// TestExpireSessionsEveryClient: expiry removes exactly the sessions last
// updated before the bound, whichever RADIUS client (or none) they belong
// to, and finds them through the (client, updated_at) index, there being
// no index on updated_at alone.
func TestExpireSessionsEveryClient(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	type sess struct {
		prefix, client string
		updated        int
		kept           bool
	}
	all := []sess{
		{"10.0.0.1/32", "", 5, false}, {"10.0.0.2/32", "", 50, true},
		{"10.0.1.1/32", "gw-a", 9, false}, {"10.0.1.2/32", "gw-a", 10, true}, {"10.0.1.3/32", "gw-a", 11, true},
		{"10.0.2.1/32", "gw-b", 1, false}, {"10.0.2.2/32", "gw-b", 2, false},
		{"10.0.3.1/32", "gw-c", 99, true},
	}
	for i, x := range all {
		ns := idxSession(x.prefix, fmt.Sprintf("+3460000000%d", i), "s", x.client, x.updated)
		if err := s.StartSession(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	bound := idxSession("10.9.9.9/32", "+34600000009", "s", "", 10).UpdatedAt
	n, err := s.ExpireSessions(ctx, bound)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, x := range all {
		if !x.kept {
			want++
		}
	}
	if n != want {
		t.Errorf("expired %d sessions, want %d", n, want)
	}
	left, err := s.NetworkSessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, ns := range left {
		got[ns.Prefix.String()] = true
	}
	for _, x := range all {
		if got[x.prefix] != x.kept {
			t.Errorf("%s (client %q, updated %d): kept %v, want %v", x.prefix, x.client, x.updated, got[x.prefix], x.kept)
		}
	}

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
