package postgres

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/numbergate/numbergate/internal/nv"
)

const sessionColumns = "prefix, msisdn, session_id, nas, imsi, client, started_at, updated_at"

// withLength records the prefix length of $1 (a cidr) among the lengths in
// use, in the same statement as the write that follows it.
const withLength = `WITH length AS (
	INSERT INTO network_session_lengths (family, bits) VALUES (family($1::cidr), masklen($1::cidr))
	ON CONFLICT DO NOTHING)
`

// StartSession stores the session for its prefix, replacing any previous
// holder of the prefix.
func (s *Store) StartSession(ctx context.Context, ns nv.NetworkSession) error {
	p, err := canonicalPrefix(ns.Prefix)
	if err != nil {
		return fmt.Errorf("postgres: start session: %w", err)
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	_, err = s.sessions.exec(ctx, p.String(), withLength+`
INSERT INTO network_sessions (`+sessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (prefix) DO UPDATE SET
	msisdn = excluded.msisdn, session_id = excluded.session_id, nas = excluded.nas, imsi = excluded.imsi,
	client = excluded.client, started_at = excluded.started_at, updated_at = excluded.updated_at`,
		p, string(ns.MSISDN), ns.SessionID, ns.NAS, ns.IMSI, ns.Client, ts(ns.StartedAt), ts(ns.UpdatedAt))
	if err != nil {
		return fail(ctx, "start session", err)
	}
	return nil
}

// UpsertSession updates the session on s.Prefix if it belongs to s.Client
// (keeping its StartedAt when the session id is the same), or creates it
// if there is none. A session on the prefix held by another client is left
// untouched and nv.ErrNotFound returned. One statement.
func (s *Store) UpsertSession(ctx context.Context, ns nv.NetworkSession) error {
	p, err := canonicalPrefix(ns.Prefix)
	if err != nil {
		return fmt.Errorf("postgres: upsert session: %w", err)
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	n, err := s.sessions.exec(ctx, p.String(), withLength+`
INSERT INTO network_sessions (`+sessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (prefix) DO UPDATE SET
	msisdn = excluded.msisdn, session_id = excluded.session_id, nas = excluded.nas, imsi = excluded.imsi,
	started_at = CASE WHEN network_sessions.session_id = excluded.session_id
		THEN network_sessions.started_at ELSE excluded.started_at END,
	updated_at = excluded.updated_at, client = excluded.client
WHERE network_sessions.client IN (excluded.client, '')`,
		p, string(ns.MSISDN), ns.SessionID, ns.NAS, ns.IMSI, ns.Client, ts(ns.StartedAt), ts(ns.UpdatedAt))
	if err != nil {
		return fail(ctx, "upsert session", err)
	}
	if n == 0 {
		return fmt.Errorf("postgres: upsert session: prefix held by another client: %w", nv.ErrNotFound)
	}
	return nil
}

// StopSession removes the session on prefix only if both client and
// session id match, and reports whether it did.
func (s *Store) StopSession(ctx context.Context, client string, prefix netip.Prefix, sessionID string) (bool, error) {
	p, err := canonicalPrefix(prefix)
	if err != nil {
		return false, fmt.Errorf("postgres: stop session: %w", err)
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	n, err := s.sessions.exec(ctx, p.String(), "DELETE FROM network_sessions WHERE prefix = $1 AND client IN ($2, '') AND session_id = $3", p, client, sessionID)
	if err != nil {
		return false, fail(ctx, "stop session", err)
	}
	return n > 0, nil
}

// PurgeClient removes every session of client last updated before before
// (Accounting-On/Off) and returns how many.
func (s *Store) PurgeClient(ctx context.Context, client string, before time.Time) (int, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	n, err := s.exec(ctx, "DELETE FROM network_sessions WHERE client = $1 AND (updated_at IS NULL OR updated_at < $2)", client, before)
	if err != nil {
		return 0, fail(ctx, "purge client", err)
	}
	return int(n), nil
}

// ExpireSessions removes sessions last updated before before, in batches
// of CollectBatch rows (each its own short statement; rows being updated
// right now are skipped, they are not idle).
func (s *Store) ExpireSessions(ctx context.Context, before time.Time) (int, error) {
	n, err := s.batched(ctx, `
DELETE FROM network_sessions WHERE prefix IN (
	SELECT prefix FROM network_sessions WHERE updated_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, before)
	if err != nil {
		return n, fmt.Errorf("postgres: expire sessions: %w", err)
	}
	return n, nil
}

// SessionFor returns the most specific session whose prefix contains addr
// (any prefix length: one primary-key probe per length in use) and that was
// updated at or after notBefore.
func (s *Store) SessionFor(ctx context.Context, addr netip.Addr, notBefore time.Time) (nv.NetworkSession, error) {
	addr = addr.Unmap()
	if !addr.IsValid() {
		return nv.NetworkSession{}, fmt.Errorf("postgres: session for: invalid address: %w", nv.ErrNotFound)
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	ns, err := scanSession(s.pool.QueryRow(ctx, `
SELECT `+sessionColumns+` FROM network_sessions
WHERE prefix = ANY (ARRAY(
	SELECT network(set_masklen($1::inet, bits))::cidr FROM network_session_lengths
	WHERE family = family($1::inet)))
AND updated_at >= $2
ORDER BY masklen(prefix) DESC LIMIT 1`, netip.PrefixFrom(addr, addr.BitLen()), notBefore))
	if err != nil {
		return nv.NetworkSession{}, fail(ctx, "session for", err)
	}
	return ns, nil
}

// NetworkSessions lists every session, by prefix.
func (s *Store) NetworkSessions(ctx context.Context) ([]nv.NetworkSession, error) {
	// A long list: bounded by the caller's context, not the op timeout.
	rows, err := s.pool.Query(ctx, "SELECT "+sessionColumns+" FROM network_sessions ORDER BY prefix")
	if err != nil {
		return nil, fail(ctx, "network sessions", err)
	}
	ss, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (nv.NetworkSession, error) { return scanSession(r) })
	if err != nil {
		return nil, fail(ctx, "network sessions", err)
	}
	return ss, nil
}

func scanSession(row pgx.Row) (nv.NetworkSession, error) {
	var (
		ns                   nv.NetworkSession
		msisdn               string
		startedAt, updatedAt *time.Time
	)
	if err := row.Scan(&ns.Prefix, &msisdn, &ns.SessionID, &ns.NAS, &ns.IMSI, &ns.Client, &startedAt, &updatedAt); err != nil {
		return nv.NetworkSession{}, err
	}
	ns.MSISDN = nv.PhoneNumber(msisdn)
	ns.StartedAt = fromTS(startedAt)
	ns.UpdatedAt = fromTS(updatedAt)
	return ns, nil
}

// AllocatePortBlock records a CGNAT allocation; an identical one already
// recorded (a retransmission) is ignored.
func (s *Store) AllocatePortBlock(ctx context.Context, b nv.PortBlock) error {
	if !b.Private.IsValid() || !b.Public.IsValid() {
		return fmt.Errorf("postgres: allocate port block: invalid address")
	}
	if b.FirstPort > b.LastPort {
		return fmt.Errorf("postgres: allocate port block: first port %d after last port %d", b.FirstPort, b.LastPort)
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	_, err := s.exec(ctx, `
INSERT INTO port_blocks (private, public, first_port, last_port, start_at, end_at)
VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
		host(b.Private), host(b.Public), int32(b.FirstPort), int32(b.LastPort), b.Start, ts(b.End))
	if err != nil {
		return fail(ctx, "allocate port block", err)
	}
	return nil
}

// ReleasePortBlock ends, at time at, the open allocation of public ports
// first..last to private, and reports whether there was one.
func (s *Store) ReleasePortBlock(ctx context.Context, private, public netip.Addr, first, last uint16, at time.Time) (bool, error) {
	if !private.IsValid() || !public.IsValid() {
		return false, fmt.Errorf("postgres: release port block: invalid address")
	}
	if at.IsZero() {
		at = time.Unix(0, 0) // NULL means still allocated
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	n, err := s.exec(ctx, `
UPDATE port_blocks SET end_at = $5
WHERE private = $1 AND public = $2 AND first_port = $3 AND last_port = $4 AND end_at IS NULL`,
		host(private), host(public), int32(first), int32(last), at)
	if err != nil {
		return false, fail(ctx, "release port block", err)
	}
	return n > 0, nil
}

// PrivateAddrFor returns the private address that held public's port at
// time at: the allocation covering the port that started at or before at
// and had not ended by then, the latest started if several do.
func (s *Store) PrivateAddrFor(ctx context.Context, public netip.AddrPort, at time.Time) (netip.Addr, error) {
	a := public.Addr().Unmap()
	if !a.IsValid() {
		return netip.Addr{}, fmt.Errorf("postgres: private addr for: invalid address: %w", nv.ErrNotFound)
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	var private netip.Prefix
	err := s.pool.QueryRow(ctx, `
SELECT private FROM port_blocks
WHERE public = $1 AND first_port <= $2 AND last_port >= $2 AND start_at <= $3 AND (end_at IS NULL OR end_at > $3)
ORDER BY start_at DESC, id DESC LIMIT 1`, host(a), int32(public.Port()), at).Scan(&private)
	if err != nil {
		return netip.Addr{}, fail(ctx, "private addr for", err)
	}
	return private.Addr(), nil
}

// host is addr (unmapped) as a single-address inet value.
func host(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap()
	return netip.PrefixFrom(addr, addr.BitLen())
}
