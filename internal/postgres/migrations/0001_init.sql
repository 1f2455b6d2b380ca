-- numbergate schema, version 1. Times are timestamptz; NULL stands for the
-- zero time.Time (an expiry of NULL on a jti, an auth session or a grant
-- means "never"; on an access token it means "already expired").

CREATE TABLE clients (
	id            text PRIMARY KEY,
	redirect_uris text[] NOT NULL,
	jwks          bytea,
	scopes        text[] NOT NULL,
	purposes      text[] NOT NULL,
	require_pkce  boolean NOT NULL,
	quota_per_day bigint NOT NULL DEFAULT 0,  -- 0: no quota
	created_at    timestamptz
);

-- A client's API calls per UTC date (the daily quota).
CREATE TABLE api_usage_daily (
	client_id text NOT NULL,
	day       date NOT NULL,
	calls     bigint NOT NULL,
	PRIMARY KEY (client_id, day)
);

CREATE TABLE signing_keys (
	seq         bigint GENERATED ALWAYS AS IDENTITY,
	id          text PRIMARY KEY,
	algorithm   text NOT NULL,
	private_jwk bytea NOT NULL,
	created_at  timestamptz
);

CREATE TABLE jtis (
	issuer     text NOT NULL,
	jti        text NOT NULL,
	expires_at timestamptz,
	PRIMARY KEY (issuer, jti)
);
CREATE INDEX jtis_expires_at ON jtis (expires_at);

CREATE TABLE auth_sessions (
	id         text PRIMARY KEY,
	data       bytea,
	expires_at timestamptz
);
CREATE INDEX auth_sessions_expires_at ON auth_sessions (expires_at);

CREATE TABLE grants (
	id            text PRIMARY KEY,
	auth_code     text UNIQUE,      -- NULL when there is none
	code_consumed boolean NOT NULL,
	revoked       boolean NOT NULL,
	data          bytea,
	expires_at    timestamptz
);
CREATE INDEX grants_expires_at ON grants (expires_at);

CREATE TABLE tokens (
	hash        text PRIMARY KEY,
	grant_id    text NOT NULL,
	client_id   text NOT NULL,
	msisdn      text NOT NULL,
	scopes      text[] NOT NULL,
	purpose     text NOT NULL,
	auth_method text NOT NULL,
	source      text NOT NULL,
	issued_at   timestamptz,
	expires_at  timestamptz,
	used_at     timestamptz          -- NULL until consumed
);
CREATE INDEX tokens_grant_id ON tokens (grant_id) WHERE grant_id <> '';
CREATE INDEX tokens_expires_at ON tokens (expires_at);

CREATE TABLE static_routes (
	seq    bigint GENERATED ALWAYS AS IDENTITY,
	prefix cidr PRIMARY KEY,
	msisdn text NOT NULL
);

-- One row per address or delegated prefix, found by its primary key (a
-- B-tree). SessionFor looks an address up at every prefix length in use,
-- listed in network_session_lengths (kept by the writes; a length no longer
-- in use only costs a probe that finds nothing), so that any length works
-- and the common case (/32, /64) is one or two index probes.
CREATE TABLE network_sessions (
	prefix     cidr PRIMARY KEY,
	msisdn     text NOT NULL,
	session_id text NOT NULL,
	nas        text NOT NULL,
	imsi       text NOT NULL,
	client     text NOT NULL,
	started_at timestamptz,
	updated_at timestamptz
);
CREATE INDEX network_sessions_client ON network_sessions (client, updated_at);
CREATE INDEX network_sessions_updated_at ON network_sessions (updated_at);

CREATE TABLE network_session_lengths (
	family smallint NOT NULL,  -- 4 or 6
	bits   smallint NOT NULL,
	PRIMARY KEY (family, bits)
);

CREATE TABLE port_blocks (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	private    inet NOT NULL,
	public     inet NOT NULL,
	first_port integer NOT NULL,
	last_port  integer NOT NULL,
	start_at   timestamptz NOT NULL,
	end_at     timestamptz,          -- NULL while allocated
	UNIQUE (public, first_port, last_port, private, start_at)
);
CREATE INDEX port_blocks_open ON port_blocks (private, public, first_port) WHERE end_at IS NULL;
CREATE INDEX port_blocks_end_at ON port_blocks (end_at) WHERE end_at IS NOT NULL;
