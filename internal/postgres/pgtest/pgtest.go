// Package pgtest gives a test its own PostgreSQL schema, created for it and
// dropped with everything in it when the test ends, so that test runs never
// collide and leave nothing behind. The server comes from
// NUMBERGATE_TEST_POSTGRES_DSN; without it the test is skipped with a
// message saying so.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the environment variable holding the test server's DSN,
// e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const EnvDSN = "NUMBERGATE_TEST_POSTGRES_DSN"

// DSN creates a fresh schema and returns a DSN whose search_path is that
// schema. The schema is dropped (CASCADE) in t's cleanup, after every
// cleanup registered later (so after the stores opened on it are closed).
func DSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvDSN)
	if base == "" {
		t.Skipf("%s is not set: skipping the PostgreSQL test (set it to a PostgreSQL server where the user may create schemas)", EnvDSN)
	}
	b := make([]byte, 6)
	rand.Read(b)
	// The creation time is in the name, so that schemas left by a test
	// process that was killed before its cleanup can be recognised and
	// dropped by a later run.
	schema := fmt.Sprintf("%s%d_%s", schemaPrefix, time.Now().Unix(), hex.EncodeToString(b))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("pgtest: connecting to %s: %v", EnvDSN, err)
	}
	defer conn.Close(ctx)
	dropStale(ctx, t, conn)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("pgtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("pgtest: dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
		}
	})
	return WithSearchPath(base, schema)
}

// schemaPrefix starts the name of every schema DSN creates:
// ngtest_<unix seconds>_<random>.
const schemaPrefix = "ngtest_"

// staleAfter is how old a test schema must be to count as left behind (no
// test of this repository runs that long).
const staleAfter = 2 * time.Hour

// dropStale drops test schemas created more than staleAfter ago: what
// killed test processes left behind.
func dropStale(ctx context.Context, t testing.TB, conn *pgx.Conn) {
	rows, err := conn.Query(ctx, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'ngtest\\_%'")
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, name := range names {
		rest := strings.TrimPrefix(name, schemaPrefix)
		secs, _, ok := strings.Cut(rest, "_")
		n, err := strconv.ParseInt(secs, 10, 64)
		if !ok || err != nil || time.Since(time.Unix(n, 0)) < staleAfter {
			continue
		}
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err == nil {
			t.Logf("pgtest: dropped %s, left behind by an earlier run", name)
		}
	}
}

// WithSearchPath returns dsn with its search_path set to schema, in the
// DSN's own form (URL or key=value).
func WithSearchPath(dsn, schema string) string {
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}
