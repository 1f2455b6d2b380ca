-- Usage records for billing: one row per API call and per token issued
-- (never the number).
CREATE TABLE usage_records (
	id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at        timestamptz NOT NULL,
	client_id text NOT NULL,
	event     text NOT NULL,
	operation text NOT NULL,
	purpose   text NOT NULL,
	scopes    text[] NOT NULL,
	result    text NOT NULL,
	source    text NOT NULL
);
CREATE INDEX usage_records_at ON usage_records (at);
