package config

import (
	"strconv"
	"strings"
	"time"
)

// Store drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Defaults of the PostgreSQL store.
const (
	DefaultStoreMaxConns         = 16
	DefaultStoreStatementTimeout = 5 * time.Second
	DefaultStoreConnMaxLifetime  = 30 * time.Minute
	DefaultKeyActivationDelay    = 10 * time.Minute
)

// EnvStoreDSN overrides store.dsn (so a password need not sit in the file).
const EnvStoreDSN = "NUMBERGATE_STORE_DSN"

// Store selects the store: the embedded SQLite file in DataDir (the
// default), or a PostgreSQL database shared by several nodes.
type Store struct {
	// Driver is DriverSQLite or DriverPostgres.
	Driver string
	// DSN is the PostgreSQL connection string (postgres driver only).
	DSN Secret
	// MaxConns bounds each node's connection pool.
	MaxConns int32
	// StatementTimeout bounds every statement; a database that does not
	// answer within it makes the node answer "unavailable".
	StatementTimeout time.Duration
	// ConnMaxLifetime recycles connections (picking up a failover).
	ConnMaxLifetime time.Duration
	// KeyActivationDelay is how long after `keys rotate` a new signing key
	// is published before nodes sign with it.
	KeyActivationDelay time.Duration
}

type rawStore struct {
	Driver             string `yaml:"driver"`
	DSN                string `yaml:"dsn"`
	MaxConns           string `yaml:"max_conns"`
	StatementTimeout   string `yaml:"statement_timeout"`
	ConnMaxLifetime    string `yaml:"conn_max_lifetime"`
	KeyActivationDelay string `yaml:"key_activation_delay"`
}

// DefaultStore is the store configuration of a file without `store:`.
func DefaultStore() Store {
	return Store{
		Driver:             DriverSQLite,
		MaxConns:           DefaultStoreMaxConns,
		StatementTimeout:   DefaultStoreStatementTimeout,
		ConnMaxLifetime:    DefaultStoreConnMaxLifetime,
		KeyActivationDelay: DefaultKeyActivationDelay,
	}
}

func storeConfig(ps *problems, raw *rawStore, env func(string) string) Store {
	s := DefaultStore()
	if raw == nil {
		raw = &rawStore{}
	}
	switch strings.ToLower(raw.Driver) {
	case "", DriverSQLite:
	case DriverPostgres:
		s.Driver = DriverPostgres
	default:
		ps.add("store.driver", "%q is not a store driver (use sqlite or postgres)", raw.Driver)
	}
	s.DSN = Secret(raw.DSN)
	if v := env(EnvStoreDSN); v != "" {
		s.DSN = Secret(v)
	}
	switch {
	case s.Driver == DriverPostgres && s.DSN == "":
		ps.add("store.dsn", "required with driver postgres: a connection string such as postgres://numbergate@db.example.net:5432/numbergate (or set $%s)", EnvStoreDSN)
	case s.Driver == DriverSQLite && raw.DSN != "":
		ps.add("store.dsn", "only used with driver postgres (the sqlite store lives in data_dir)")
	}
	if raw.MaxConns != "" {
		n, err := strconv.ParseInt(raw.MaxConns, 10, 32)
		if err != nil || n < 1 || n > 10000 {
			ps.add("store.max_conns", "%q is not a pool size (a whole number from 1 to 10000)", raw.MaxConns)
		} else {
			s.MaxConns = int32(n)
		}
	}
	s.StatementTimeout = duration(ps, "store.statement_timeout", raw.StatementTimeout, DefaultStoreStatementTimeout, 10*time.Minute)
	s.ConnMaxLifetime = duration(ps, "store.conn_max_lifetime", raw.ConnMaxLifetime, DefaultStoreConnMaxLifetime, 0)
	s.KeyActivationDelay = duration(ps, "store.key_activation_delay", raw.KeyActivationDelay, DefaultKeyActivationDelay, 7*24*time.Hour)
	return s
}
