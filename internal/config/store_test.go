package config

import (
	"strings"
	"testing"
	"time"
)

func TestStoreConfig(t *testing.T) {
	cfg, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store != DefaultStore() || cfg.Store.Driver != DriverSQLite {
		t.Errorf("default store = %+v", cfg.Store)
	}

	cfg, err = ParseEnv([]byte(`
listen: 127.0.0.1:8443
issuer: https://nv.example.net
store:
  driver: postgres
  dsn: postgres://ng:secret@db:5432/ng
  max_conns: 40
  statement_timeout: 2s
  conn_max_lifetime: 1h
  key_activation_delay: 30s
`), func(string) string { return "" })
	if err != nil {
		t.Fatalf("postgres store without data_dir: %v", err)
	}
	want := Store{Driver: DriverPostgres, DSN: "postgres://ng:secret@db:5432/ng", MaxConns: 40,
		StatementTimeout: 2 * time.Second, ConnMaxLifetime: time.Hour, KeyActivationDelay: 30 * time.Second}
	if cfg.Store != want {
		t.Errorf("store = %+v, want %+v", cfg.Store, want)
	}

	cfg, err = ParseEnv([]byte(minimal+"store: {driver: postgres}\n"), func(k string) string {
		if k == EnvStoreDSN {
			return "postgres://from-env/ng"
		}
		return ""
	})
	if err != nil || cfg.Store.DSN != "postgres://from-env/ng" {
		t.Errorf("dsn from $%s: %+v, %v", EnvStoreDSN, cfg, err)
	}

	for _, tt := range []struct{ yaml, path string }{
		{"store: {driver: mysql}", "store.driver"},
		{"store: {driver: postgres}", "store.dsn"},
		{"store: {dsn: postgres://x/y}", "store.dsn"},
		{"store: {driver: postgres, dsn: x, max_conns: 0}", "store.max_conns"},
		{"store: {driver: postgres, dsn: x, statement_timeout: soon}", "store.statement_timeout"},
	} {
		_, err := Parse([]byte(minimal + tt.yaml + "\n"))
		if err == nil || !strings.Contains(err.Error(), tt.path) {
			t.Errorf("%s: error %v, want one at %s", tt.yaml, err, tt.path)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error shows the dsn: %v", tt.yaml, err)
		}
	}
}
