package postgres

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/numbergate/numbergate/internal/nv"
)

// PutClient creates or replaces a client.
func (s *Store) PutClient(ctx context.Context, c nv.Client) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	_, err := s.exec(ctx, `
INSERT INTO clients (id, redirect_uris, jwks, scopes, purposes, require_pkce, quota_per_day, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (id) DO UPDATE SET
	redirect_uris = excluded.redirect_uris, jwks = excluded.jwks,
	scopes = excluded.scopes, purposes = excluded.purposes, require_pkce = excluded.require_pkce,
	quota_per_day = excluded.quota_per_day, created_at = excluded.created_at`,
		c.ID, nonNil(c.RedirectURIs), c.JWKS, nonNil(c.Scopes), nonNil(c.Purposes), c.RequirePKCE, c.QuotaPerDay, ts(c.CreatedAt))
	s.ownClientChange(ctx)
	if err != nil {
		return fail(ctx, "put client", err)
	}
	return nil
}

const clientColumns = "id, redirect_uris, jwks, scopes, purposes, require_pkce, quota_per_day, created_at"

// scanClient scans a row of clientColumns, after the columns of lead if
// any.
func scanClient(row pgx.Row, lead ...any) (nv.Client, error) {
	var (
		c         nv.Client
		createdAt *time.Time
	)
	if err := row.Scan(append(lead, &c.ID, &c.RedirectURIs, &c.JWKS, &c.Scopes, &c.Purposes, &c.RequirePKCE, &c.QuotaPerDay, &createdAt)...); err != nil {
		return nv.Client{}, err
	}
	c.CreatedAt = fromTS(createdAt)
	return c, nil
}

// Client returns the client with id (nv.ErrNotFound if there is none).
//
// Clients are served from memory (internal/clientcache), as by the SQLite
// store: a cached client costs no round trip. The clients change counter
// (one row of the changes table, bumped by a trigger in the transaction of
// every write to the clients table, by any node, the CLI or by hand) is
// read
//   - on every cache miss, in the same statement (so the same snapshot) as
//     the row: an unknown client always reads the database, so a client
//     added on another node or with `numbergate clients add` works at its
//     first request;
//   - after each change this Store makes itself, so its own changes are seen
//     at once;
//   - every clientcache.Refresh (100 ms) by a background poll, one primary
//     key read: a client removed or changed elsewhere (its keys, redirect
//     URIs, scopes, quota) is seen by every node within that bound, or later
//     only on a node too loaded to run the poll on time; a poll that cannot
//     read the counter within the bound (the database down or slow, the
//     pool exhausted) drops the cache, and lookups read the database until
//     a poll succeeds again.
//
// Whenever the counter has moved, every cached client is dropped. The
// counter is polled rather than pushed with LISTEN/NOTIFY: a notification
// needs a connection of its own held open (which transaction-mode poolers
// such as PgBouncer do not give) and is lost across a reconnect, so a poll
// would be needed as well; one indexed read every 100 ms per node is
// cheap.
func (s *Store) Client(ctx context.Context, id string) (nv.Client, error) {
	if c, ok := s.clients.Get(id); ok {
		return c, nil
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	var gen int64
	c, err := scanClient(s.pool.QueryRow(ctx,
		"SELECT (SELECT n FROM changes WHERE name = 'clients'), "+clientColumns+" FROM clients WHERE id = $1", id), &gen)
	if err != nil {
		return nv.Client{}, fail(ctx, "client", err)
	}
	s.clients.Put(gen, c)
	return c, nil
}

// clientsGen reads the clients change counter.
func (s *Store) clientsGen(ctx context.Context) (int64, error) {
	var gen int64
	err := s.pool.QueryRow(ctx, "SELECT n FROM changes WHERE name = 'clients'").Scan(&gen)
	return gen, err
}

// ownClientChange follows a change this Store made to the clients table
// (committed or not): the change counter is read at once, so the change is
// seen by the next lookup rather than the next poll. If that read fails the
// cache is dropped all the same.
func (s *Store) ownClientChange(ctx context.Context) {
	_ = s.clients.Check(ctx, s.clientsGen)
}

// Clients returns every client, by id.
func (s *Store) Clients(ctx context.Context) ([]nv.Client, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	return queryAll(ctx, s, "clients", func(r pgx.CollectableRow) (nv.Client, error) { return scanClient(r) },
		"SELECT "+clientColumns+" FROM clients ORDER BY id")
}

// DeleteClient removes a client (nv.ErrNotFound if there is none).
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	err := s.execOne(ctx, "delete client", nv.ErrNotFound, "DELETE FROM clients WHERE id = $1", id)
	s.ownClientChange(ctx)
	return err
}

// AddSigningKey stores a new signing key (nv.ErrAlreadyExists if the id is
// taken).
func (s *Store) AddSigningKey(ctx context.Context, k nv.SigningKey) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	return s.execOne(ctx, "add signing key", nv.ErrAlreadyExists, `
INSERT INTO signing_keys (id, algorithm, private_jwk, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING`, k.ID, k.Algorithm, k.PrivateJWK, ts(k.CreatedAt))
}

// SigningKeys returns every signing key, oldest first (by CreatedAt, then
// by insertion).
func (s *Store) SigningKeys(ctx context.Context) ([]nv.SigningKey, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	return queryAll(ctx, s, "signing keys", func(r pgx.CollectableRow) (nv.SigningKey, error) {
		var (
			k         nv.SigningKey
			createdAt *time.Time
		)
		err := r.Scan(&k.ID, &k.Algorithm, &k.PrivateJWK, &createdAt)
		k.CreatedAt = fromTS(createdAt)
		return k, err
	}, "SELECT id, algorithm, private_jwk, created_at FROM signing_keys ORDER BY created_at NULLS FIRST, seq")
}

// staticRoutesLock serializes ReplaceStaticRoutes of nodes starting
// together: without it, two replacements could each delete the rows they
// saw and then collide on the rows the other inserted.
const staticRoutesLock = "numbergate.static_routes"

// ReplaceStaticRoutes replaces the whole static map in one transaction. A
// prefix given twice is an error (nv.ErrAlreadyExists) and changes nothing.
func (s *Store) ReplaceStaticRoutes(ctx context.Context, routes []nv.StaticRoute) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1 || current_schema()))", staticRoutesLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM static_routes"); err != nil {
			return err
		}
		b := &pgx.Batch{}
		prefixes := make([]netip.Prefix, len(routes))
		for i, r := range routes {
			p, err := canonicalPrefix(r.Prefix)
			if err != nil {
				return err
			}
			prefixes[i] = p
			b.Queue("INSERT INTO static_routes (prefix, msisdn) VALUES ($1, $2) ON CONFLICT DO NOTHING", p, string(r.MSISDN))
		}
		br := tx.SendBatch(ctx, b)
		for _, p := range prefixes {
			tag, err := br.Exec()
			if err != nil {
				br.Close()
				return err
			}
			if tag.RowsAffected() == 0 {
				br.Close()
				return fmt.Errorf("prefix %s given twice: %w", p, nv.ErrAlreadyExists)
			}
		}
		return br.Close()
	})
	if err != nil {
		return fail(ctx, "replace static routes", err)
	}
	return nil
}

// StaticRoutes returns the static map in the order it was stored.
func (s *Store) StaticRoutes(ctx context.Context) ([]nv.StaticRoute, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	return queryAll(ctx, s, "static routes", func(r pgx.CollectableRow) (nv.StaticRoute, error) {
		var (
			sr     nv.StaticRoute
			msisdn string
		)
		err := r.Scan(&sr.Prefix, &msisdn)
		sr.MSISDN = nv.PhoneNumber(msisdn)
		return sr, err
	}, "SELECT prefix, msisdn FROM static_routes ORDER BY seq")
}

// canonicalPrefix is nv.CanonicalPrefix, with an error for an invalid p.
func canonicalPrefix(p netip.Prefix) (netip.Prefix, error) {
	c := nv.CanonicalPrefix(p)
	if !c.IsValid() {
		return netip.Prefix{}, fmt.Errorf("invalid prefix %q", p)
	}
	return c, nil
}
