package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations[i] brings the schema from version i to version i+1. The
// version is kept in PRAGMA user_version. Append; never edit a released
// entry.
var migrations = []string{
	`
CREATE TABLE clients (
	id            TEXT PRIMARY KEY,
	redirect_uris TEXT NOT NULL,    -- JSON array
	jwks          BLOB,
	scopes        TEXT NOT NULL,    -- JSON array
	purposes      TEXT NOT NULL,    -- JSON array
	require_pkce  INTEGER NOT NULL,
	created_at    INTEGER NOT NULL
);

CREATE TABLE signing_keys (
	id          TEXT PRIMARY KEY,
	algorithm   TEXT NOT NULL,
	private_jwk BLOB NOT NULL,
	created_at  INTEGER NOT NULL
);

CREATE TABLE jtis (
	jti        TEXT PRIMARY KEY,
	expires_at INTEGER NOT NULL
);
CREATE INDEX jtis_expires_at ON jtis (expires_at);

CREATE TABLE auth_sessions (
	id         TEXT PRIMARY KEY,
	data       BLOB,
	expires_at INTEGER NOT NULL
);
CREATE INDEX auth_sessions_expires_at ON auth_sessions (expires_at);

CREATE TABLE grants (
	id            TEXT PRIMARY KEY,
	auth_code     TEXT UNIQUE,      -- NULL when there is none
	code_consumed INTEGER NOT NULL,
	revoked       INTEGER NOT NULL,
	data          BLOB,
	expires_at    INTEGER NOT NULL
);
CREATE INDEX grants_expires_at ON grants (expires_at);

CREATE TABLE tokens (
	hash        TEXT PRIMARY KEY,
	grant_id    TEXT NOT NULL,
	client_id   TEXT NOT NULL,
	msisdn      TEXT NOT NULL,
	scopes      TEXT NOT NULL,      -- JSON array
	purpose     TEXT NOT NULL,
	auth_method TEXT NOT NULL,
	source      TEXT NOT NULL,
	issued_at   INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	used_at     INTEGER              -- NULL until consumed
);
CREATE INDEX tokens_grant_id ON tokens (grant_id) WHERE grant_id <> '';
CREATE INDEX tokens_expires_at ON tokens (expires_at);

CREATE TABLE static_routes (
	prefix TEXT PRIMARY KEY,        -- canonical netip.Prefix
	msisdn TEXT NOT NULL
);

CREATE TABLE network_sessions (
	prefix     TEXT PRIMARY KEY,    -- canonical netip.Prefix
	bits       INTEGER NOT NULL,
	msisdn     TEXT NOT NULL,
	session_id TEXT NOT NULL,
	nas        TEXT NOT NULL,
	imsi       TEXT NOT NULL,
	started_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE INDEX network_sessions_nas ON network_sessions (nas);
CREATE INDEX network_sessions_updated_at ON network_sessions (updated_at);

CREATE TABLE port_blocks (
	id         INTEGER PRIMARY KEY,
	private    TEXT NOT NULL,
	public     TEXT NOT NULL,
	first_port INTEGER NOT NULL,
	last_port  INTEGER NOT NULL,
	start_at   INTEGER NOT NULL,
	end_at     INTEGER NOT NULL,    -- 0 while allocated
	UNIQUE (public, first_port, last_port, private, start_at)
);
CREATE INDEX port_blocks_open ON port_blocks (private, public, first_port) WHERE end_at = 0;
CREATE INDEX port_blocks_end_at ON port_blocks (end_at) WHERE end_at <> 0;
`,
	// 2: consumed jtis are keyed by issuer (a client cannot burn another
	// client's jti). Records of the old global table are dropped: they
	// live at most minutes, and a jti id without its issuer cannot be
	// re-keyed.
	`
DROP TABLE jtis;
CREATE TABLE jtis (
	issuer     TEXT NOT NULL,
	jti        TEXT NOT NULL,
	expires_at INTEGER NOT NULL,
	PRIMARY KEY (issuer, jti)
) WITHOUT ROWID;
CREATE INDEX jtis_expires_at ON jtis (expires_at);
`,
	// 3: network sessions belong to the RADIUS client entry that sent them
	// (Accounting-On/Off purge by client, not by the NAS the packet names).
	`
ALTER TABLE network_sessions ADD COLUMN client TEXT NOT NULL DEFAULT '';
DROP INDEX network_sessions_nas;
CREATE INDEX network_sessions_client ON network_sessions (client, updated_at);
`,
	// 4: daily API quotas: a client's quota and its count per UTC date.
	`
ALTER TABLE clients ADD COLUMN quota_per_day INTEGER NOT NULL DEFAULT 0;
CREATE TABLE api_usage_daily (
	client_id TEXT NOT NULL,
	day       TEXT NOT NULL,        -- UTC date, YYYY-MM-DD
	calls     INTEGER NOT NULL,
	PRIMARY KEY (client_id, day)
) WITHOUT ROWID;
`,
	// 5: usage records for billing (never the number).
	`
CREATE TABLE usage_records (
	id        INTEGER PRIMARY KEY,
	at        INTEGER NOT NULL,
	client_id TEXT NOT NULL,
	event     TEXT NOT NULL,
	operation TEXT NOT NULL,
	purpose   TEXT NOT NULL,
	scopes    TEXT NOT NULL,        -- space-separated
	result    TEXT NOT NULL,
	source    TEXT NOT NULL
);
CREATE INDEX usage_records_at ON usage_records (at);
`,
	// 6: a change counter per cached table, bumped by triggers, so that a
	// server caching clients in memory sees at once a change made by
	// another process (numbergate clients add) with one cheap read.
	`
CREATE TABLE changes (
	name TEXT PRIMARY KEY,
	n    INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO changes (name, n) VALUES ('clients', 0);
CREATE TRIGGER clients_insert_changes AFTER INSERT ON clients
BEGIN UPDATE changes SET n = n + 1 WHERE name = 'clients'; END;
CREATE TRIGGER clients_update_changes AFTER UPDATE ON clients
BEGIN UPDATE changes SET n = n + 1 WHERE name = 'clients'; END;
CREATE TRIGGER clients_delete_changes AFTER DELETE ON clients
BEGIN UPDATE changes SET n = n + 1 WHERE name = 'clients'; END;
`,
	// 7: the prefix lengths network sessions use, per family, kept by a
	// trigger (never shrinking), so that an identity lookup probes only
	// those lengths instead of all 33 (IPv4) or 129 (IPv6).
	`
CREATE TABLE session_lengths (
	v6   INTEGER NOT NULL,
	bits INTEGER NOT NULL,
	PRIMARY KEY (v6, bits)
) WITHOUT ROWID;
INSERT OR IGNORE INTO session_lengths (v6, bits)
	SELECT DISTINCT instr(prefix, ':') > 0, bits FROM network_sessions;
CREATE TRIGGER network_sessions_lengths AFTER INSERT ON network_sessions
BEGIN INSERT OR IGNORE INTO session_lengths (v6, bits) VALUES (instr(NEW.prefix, ':') > 0, NEW.bits); END;
`,
	// 8: expiry finds old sessions through (client, updated_at), as the
	// purge of Accounting-On/Off does (ExpireSessions visits each client
	// with a loose index scan), so the index on updated_at alone goes:
	// every session write updates one index page fewer.
	`
DROP INDEX network_sessions_updated_at;
`,
}

// migrate applies the migrations the database has not seen, in one
// transaction.
func (s *Store) migrate(ctx context.Context) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var v int
		if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			return err
		}
		if v > len(migrations) {
			return fmt.Errorf("database schema version %d is newer than this binary knows (%d)", v, len(migrations))
		}
		for i := v; i < len(migrations); i++ {
			if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
				return fmt.Errorf("to version %d: %w", i+1, err)
			}
		}
		if v < len(migrations) {
			// PRAGMA takes no bound parameters; the value is our own int.
			if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return nil
}
