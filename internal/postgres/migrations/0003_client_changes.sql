-- The clients change counter: bumped by a trigger in the same transaction
-- as every statement that writes the clients table, from any node, the CLI
-- or a hand-written statement. Every node caches clients in memory and
-- polls this one row (internal/clientcache): a counter that moved drops its
-- cache. Statement-level, so a statement that changes no row bumps it too
-- (a needless drop, never a missed one), and TRUNCATE is covered.
CREATE TABLE changes (
	name text PRIMARY KEY,
	n    bigint NOT NULL
);
INSERT INTO changes (name, n) VALUES ('clients', 0);

-- search_path is fixed to the one the migration runs under, so the trigger
-- finds this schema's counter whatever the search_path of the session
-- that writes the clients table.
CREATE FUNCTION clients_changed() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
	UPDATE changes SET n = n + 1 WHERE name = 'clients';
	RETURN NULL;
END
$$;

CREATE TRIGGER clients_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON clients
	FOR EACH STATEMENT EXECUTE FUNCTION clients_changed();
