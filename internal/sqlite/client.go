package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/numbergate/numbergate/internal/nv"
)

// PutClient creates or replaces a client.
func (s *Store) PutClient(ctx context.Context, c nv.Client) error {
	_, err := s.exec(ctx, `
INSERT INTO clients (id, redirect_uris, jwks, scopes, purposes, require_pkce, created_at, quota_per_day)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
	redirect_uris = excluded.redirect_uris, jwks = excluded.jwks,
	scopes = excluded.scopes, purposes = excluded.purposes,
	require_pkce = excluded.require_pkce, created_at = excluded.created_at,
	quota_per_day = excluded.quota_per_day`,
		c.ID, jsonList(c.RedirectURIs), c.JWKS, jsonList(c.Scopes), jsonList(c.Purposes),
		c.RequirePKCE, unixNano(c.CreatedAt), c.QuotaPerDay)
	s.ownClientChange(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: put client: %w", err)
	}
	return nil
}

const clientColumns = "id, redirect_uris, jwks, scopes, purposes, require_pkce, created_at, quota_per_day"

func scanClient(row interface{ Scan(...any) error }) (nv.Client, error) {
	var (
		c                      nv.Client
		uris, scopes, purposes string
		createdAt              int64
	)
	if err := row.Scan(&c.ID, &uris, &c.JWKS, &scopes, &purposes, &c.RequirePKCE, &createdAt, &c.QuotaPerDay); err != nil {
		return nv.Client{}, err
	}
	c.CreatedAt = fromUnixNano(createdAt)
	for _, f := range []struct {
		text string
		dst  *[]string
	}{{uris, &c.RedirectURIs}, {scopes, &c.Scopes}, {purposes, &c.Purposes}} {
		if err := json.Unmarshal([]byte(f.text), f.dst); err != nil {
			return nv.Client{}, err
		}
	}
	return c, nil
}

// Client returns the client with id (nv.ErrNotFound if there is none).
//
// Clients are served from memory (internal/clientcache): a cached client
// costs no database read. The clients change counter (bumped by triggers
// on every insert, update and delete, by any process) is read
//   - on every cache miss, with the row: an unknown client always reads the
//     database, so a client added with `numbergate clients add` (another
//     process) works at its first request;
//   - after each change this Store makes itself, so its own changes are seen
//     at once;
//   - every clientcache.Refresh (100 ms) by a background poll: a client
//     removed or changed by another process (`clients remove`,
//     `clients add --replace`, a new JWKS) is seen within that bound, or
//     later only on a machine too loaded to run the poll on time; a poll
//     that cannot read the counter drops the cache.
//
// Whenever the counter has moved, every cached client is dropped.
func (s *Store) Client(ctx context.Context, id string) (nv.Client, error) {
	if c, ok := s.clients.Get(id); ok {
		return c, nil
	}
	// The counter is read before the row: a change committed in between
	// bumps the counter past the one the row is cached under, so the next
	// poll drops it; the other order could cache an old row under a new
	// counter.
	gen, err := s.clientsGen(ctx)
	if err != nil {
		return nv.Client{}, fmt.Errorf("sqlite: client: %w", err)
	}
	c, err := scanClient(s.queryRow(ctx, "SELECT "+clientColumns+" FROM clients WHERE id = ?", id))
	if err != nil {
		return nv.Client{}, fmt.Errorf("sqlite: client: %w", notFound(err))
	}
	s.clients.Put(gen, c)
	return c, nil
}

// clientsGen reads the clients change counter.
func (s *Store) clientsGen(ctx context.Context) (int64, error) {
	var gen int64
	err := s.queryRow(ctx, "SELECT n FROM changes WHERE name = 'clients'").Scan(&gen)
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
	rows, err := s.query(ctx, "SELECT "+clientColumns+" FROM clients ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("sqlite: clients: %w", err)
	}
	defer rows.Close()
	var cs []nv.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: clients: %w", err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: clients: %w", err)
	}
	return cs, nil
}

// DeleteClient removes a client (nv.ErrNotFound if there is none).
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	n, err := s.exec(ctx, "DELETE FROM clients WHERE id = ?", id)
	s.ownClientChange(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: delete client: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: delete client: %w", nv.ErrNotFound)
	}
	return nil
}

// AddSigningKey stores a new signing key (nv.ErrAlreadyExists if the id is
// taken).
func (s *Store) AddSigningKey(ctx context.Context, k nv.SigningKey) error {
	n, err := s.exec(ctx, `
INSERT INTO signing_keys (id, algorithm, private_jwk, created_at) VALUES (?, ?, ?, ?)
ON CONFLICT DO NOTHING`, k.ID, k.Algorithm, k.PrivateJWK, unixNano(k.CreatedAt))
	if err != nil {
		return fmt.Errorf("sqlite: add signing key: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: add signing key: %w", nv.ErrAlreadyExists)
	}
	return nil
}

// SigningKeys returns every signing key, oldest first (by CreatedAt, then
// by insertion).
func (s *Store) SigningKeys(ctx context.Context) ([]nv.SigningKey, error) {
	rows, err := s.query(ctx, "SELECT id, algorithm, private_jwk, created_at FROM signing_keys ORDER BY created_at, rowid")
	if err != nil {
		return nil, fmt.Errorf("sqlite: signing keys: %w", err)
	}
	defer rows.Close()
	var ks []nv.SigningKey
	for rows.Next() {
		var (
			k         nv.SigningKey
			createdAt int64
		)
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.PrivateJWK, &createdAt); err != nil {
			return nil, fmt.Errorf("sqlite: signing keys: %w", err)
		}
		k.CreatedAt = fromUnixNano(createdAt)
		ks = append(ks, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: signing keys: %w", err)
	}
	return ks, nil
}

// ReplaceStaticRoutes replaces the whole static map in one transaction. A
// prefix given twice is an error (nv.ErrAlreadyExists) and changes nothing.
func (s *Store) ReplaceStaticRoutes(ctx context.Context, routes []nv.StaticRoute) error {
	err := s.write(ctx, func(tx *wtx) error {
		if _, err := tx.exec("DELETE FROM static_routes"); err != nil {
			return err
		}
		for _, r := range routes {
			p, err := canonicalPrefix(r.Prefix)
			if err != nil {
				return err
			}
			n, err := tx.exec("INSERT INTO static_routes (prefix, msisdn) VALUES (?, ?) ON CONFLICT DO NOTHING", p.String(), string(r.MSISDN))
			if err != nil {
				return err
			} else if n == 0 {
				return fmt.Errorf("prefix %s given twice: %w", p, nv.ErrAlreadyExists)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: replace static routes: %w", err)
	}
	return nil
}

// StaticRoutes returns the static map in the order it was stored.
func (s *Store) StaticRoutes(ctx context.Context) ([]nv.StaticRoute, error) {
	rows, err := s.query(ctx, "SELECT prefix, msisdn FROM static_routes ORDER BY rowid")
	if err != nil {
		return nil, fmt.Errorf("sqlite: static routes: %w", err)
	}
	defer rows.Close()
	var rs []nv.StaticRoute
	for rows.Next() {
		var p, msisdn string
		if err := rows.Scan(&p, &msisdn); err != nil {
			return nil, fmt.Errorf("sqlite: static routes: %w", err)
		}
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("sqlite: static routes: %w", err)
		}
		rs = append(rs, nv.StaticRoute{Prefix: prefix, MSISDN: nv.PhoneNumber(msisdn)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: static routes: %w", err)
	}
	return rs, nil
}

// jsonList encodes a list of strings as a JSON array ("[]" for none).
func jsonList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // a []string always encodes
	return string(b)
}

// canonicalPrefix is p with its host bits cleared and an IPv4-mapped IPv6
// prefix turned into IPv4; its String is the key the store uses.
func canonicalPrefix(p netip.Prefix) (netip.Prefix, error) {
	c := nv.CanonicalPrefix(p)
	if !c.IsValid() {
		return netip.Prefix{}, fmt.Errorf("invalid prefix %q", p)
	}
	return c, nil
}
