package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

// StartSession stores the session for its prefix, replacing any previous
// holder of the prefix.
func (s *Store) StartSession(ctx context.Context, ns nv.NetworkSession) error {
	if _, err := s.putSession(ctx, ns, false); err != nil {
		return fmt.Errorf("sqlite: start session: %w", err)
	}
	return nil
}

// UpsertSession creates the session for its prefix, or updates it if it
// belongs to the same client. When the stored session has the same session
// id, its StartedAt is kept; otherwise the new session replaces it whole. A
// session of another client is left alone (nv.ErrNotFound).
func (s *Store) UpsertSession(ctx context.Context, ns nv.NetworkSession) error {
	n, err := s.putSession(ctx, ns, true)
	if err != nil {
		return fmt.Errorf("sqlite: upsert session: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: upsert session: prefix held by another client: %w", nv.ErrNotFound)
	}
	return nil
}

// The two session writes, built once (the writer caches statements by
// their text). The upsert returns started_at as stored (it may keep the
// old one) for the session index; a Start stores the one it is given.
const (
	startSessionSQL = `
INSERT INTO network_sessions (prefix, bits, msisdn, session_id, nas, imsi, started_at, updated_at, client)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (prefix) DO UPDATE SET
	msisdn = excluded.msisdn, session_id = excluded.session_id, nas = excluded.nas,
	imsi = excluded.imsi, started_at = excluded.started_at, updated_at = excluded.updated_at,
	client = excluded.client`
	upsertSessionSQL = `
INSERT INTO network_sessions (prefix, bits, msisdn, session_id, nas, imsi, started_at, updated_at, client)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (prefix) DO UPDATE SET
	msisdn = excluded.msisdn, session_id = excluded.session_id, nas = excluded.nas,
	imsi = excluded.imsi, started_at = CASE WHEN network_sessions.session_id = excluded.session_id
		THEN network_sessions.started_at ELSE excluded.started_at END, updated_at = excluded.updated_at,
	client = excluded.client
WHERE network_sessions.client IN (excluded.client, '')
RETURNING started_at`
)

func (s *Store) putSession(ctx context.Context, ns nv.NetworkSession, upsert bool) (int64, error) {
	p, err := canonicalPrefix(ns.Prefix)
	if err != nil {
		return 0, err
	}
	s.lengths.add(p) // before the write: a superset is harmless
	eff := sessEffect{kind: effPut, p: p, client: ns.Client}
	err = s.writeThen(ctx, func(tx *wtx) error {
		eff.n = 0
		args := []any{p.String(), p.Bits(), string(ns.MSISDN), ns.SessionID, ns.NAS, ns.IMSI,
			unixNano(ns.StartedAt), unixNano(ns.UpdatedAt), ns.Client}
		started := unixNano(ns.StartedAt)
		if !upsert {
			if _, err := tx.exec(startSessionSQL, args...); err != nil {
				return err
			}
		} else if err := tx.queryRow(upsertSessionSQL, args...).Scan(&started); errors.Is(err, sql.ErrNoRows) {
			return nil // refused: the prefix is another client's
		} else if err != nil {
			return err
		}
		eff.n, eff.e = 1, entryOf(ns, started)
		return nil
	}, func() { s.sidx.committed(&eff) })
	return eff.n, err
}

// deleteSessions runs a DELETE of network sessions described by eff and
// returns how many rows it removed, once that is durable.
func (s *Store) deleteSessions(ctx context.Context, eff sessEffect, q string, args ...any) (int64, error) {
	err := s.writeThen(ctx, func(tx *wtx) (err error) {
		eff.n, err = tx.exec(q, args...)
		return err
	}, func() { s.sidx.committed(&eff) })
	return eff.n, err
}

// StopSession removes the session on prefix only if both its client and
// its session id match, and reports whether it did.
func (s *Store) StopSession(ctx context.Context, client string, prefix netip.Prefix, sessionID string) (bool, error) {
	p, err := canonicalPrefix(prefix)
	if err != nil {
		return false, fmt.Errorf("sqlite: stop session: %w", err)
	}
	n, err := s.deleteSessions(ctx, sessEffect{kind: effStop, p: p, client: client, sid: sessionID},
		"DELETE FROM network_sessions WHERE prefix = ? AND client IN (?, '') AND session_id = ?",
		p.String(), client, sessionID)
	if err != nil {
		return false, fmt.Errorf("sqlite: stop session: %w", err)
	}
	return n > 0, nil
}

// PurgeClient removes every session of a RADIUS client last updated before
// before (Accounting-On/Off).
func (s *Store) PurgeClient(ctx context.Context, client string, before time.Time) (int, error) {
	b := unixNano(before)
	n, err := s.deleteSessions(ctx, sessEffect{kind: effPurge, client: client, before: b},
		"DELETE FROM network_sessions WHERE client = ? AND updated_at < ?", client, b)
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge client: %w", err)
	}
	return int(n), nil
}

// ExpireSessions removes sessions last updated before before.
func (s *Store) ExpireSessions(ctx context.Context, before time.Time) (int, error) {
	b := unixNano(before)
	n, err := s.deleteSessions(ctx, sessEffect{kind: effExpire, before: b}, expireQuery, b)
	if err != nil {
		return 0, fmt.Errorf("sqlite: expire sessions: %w", err)
	}
	return int(n), nil
}

// expireQuery deletes the sessions last updated before ?, client by client
// through the (client, updated_at) index (there is no index on updated_at
// alone, migration 8): the recursive query lists the distinct clients with
// one index seek each (a loose index scan), however many sessions each
// has.
const expireQuery = `
WITH RECURSIVE clients(c) AS (
	SELECT min(client) FROM network_sessions
	UNION ALL
	SELECT (SELECT min(client) FROM network_sessions WHERE client > c) FROM clients WHERE c IS NOT NULL
)
DELETE FROM network_sessions WHERE client IN (SELECT c FROM clients) AND updated_at < ?`

// SessionFor returns the most specific session whose prefix holds addr and
// that was updated at or after notBefore. It reads the in-memory session
// index (sessionindex.go) when that is in use, and SQLite otherwise.
func (s *Store) SessionFor(ctx context.Context, addr netip.Addr, notBefore time.Time) (nv.NetworkSession, error) {
	addr = addr.Unmap().WithZone("")
	if !addr.IsValid() {
		return nv.NetworkSession{}, fmt.Errorf("sqlite: session for: invalid address: %w", nv.ErrNotFound)
	}
	if ns, ok, ready := s.sidx.get(addr, unixNano(notBefore)); ready {
		if !ok {
			return nv.NetworkSession{}, errNoSession
		}
		return ns, nil
	}
	return s.sessionForSQL(ctx, addr, notBefore)
}

// sessionForSQL is SessionFor on the table. Prefixes are stored canonical,
// so the candidates are addr (canonical) masked to each prefix length
// sessions of its family use (lengths.go), each an exact primary-key probe.
func (s *Store) sessionForSQL(ctx context.Context, addr netip.Addr, notBefore time.Time) (nv.NetworkSession, error) {
	lengths := s.lengths.of(addr)
	candidates := make([]any, 0, len(lengths)+1)
	for _, bits := range lengths {
		if bits <= addr.BitLen() {
			candidates = append(candidates, netip.PrefixFrom(addr, bits).Masked().String())
		}
	}
	if len(candidates) == 0 {
		return nv.NetworkSession{}, fmt.Errorf("sqlite: session for: %w", nv.ErrNotFound)
	}
	args := append(candidates, unixNano(notBefore))
	rows, err := s.query(ctx, `
SELECT `+sessionColumns+` FROM network_sessions
WHERE prefix IN (?`+strings.Repeat(", ?", len(candidates)-1)+`) AND updated_at >= ?
ORDER BY bits DESC LIMIT 1`, args...)
	if err != nil {
		return nv.NetworkSession{}, fmt.Errorf("sqlite: session for: %w", err)
	}
	ss, err := scanSessions(rows)
	if err != nil {
		return nv.NetworkSession{}, fmt.Errorf("sqlite: session for: %w", err)
	}
	if len(ss) == 0 {
		return nv.NetworkSession{}, fmt.Errorf("sqlite: session for: %w", nv.ErrNotFound)
	}
	return ss[0], nil
}

// NetworkSessions lists every session, by prefix.
func (s *Store) NetworkSessions(ctx context.Context) ([]nv.NetworkSession, error) {
	rows, err := s.query(ctx, "SELECT "+sessionColumns+" FROM network_sessions ORDER BY prefix")
	if err != nil {
		return nil, fmt.Errorf("sqlite: network sessions: %w", err)
	}
	ss, err := scanSessions(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: network sessions: %w", err)
	}
	return ss, nil
}

const sessionColumns = "prefix, msisdn, session_id, nas, imsi, started_at, updated_at, client"

type rowsScanner interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close() error
}

func scanSessions(rows rowsScanner) ([]nv.NetworkSession, error) {
	defer rows.Close()
	var ss []nv.NetworkSession
	for rows.Next() {
		var (
			ns                   nv.NetworkSession
			prefix, msisdn       string
			startedAt, updatedAt int64
		)
		if err := rows.Scan(&prefix, &msisdn, &ns.SessionID, &ns.NAS, &ns.IMSI, &startedAt, &updatedAt, &ns.Client); err != nil {
			return nil, err
		}
		p, err := netip.ParsePrefix(prefix)
		if err != nil {
			return nil, err
		}
		ns.Prefix = p
		ns.MSISDN = nv.PhoneNumber(msisdn)
		ns.StartedAt = fromUnixNano(startedAt)
		ns.UpdatedAt = fromUnixNano(updatedAt)
		ss = append(ss, ns)
	}
	return ss, rows.Err()
}

// AllocatePortBlock records a CGNAT allocation; an identical one already
// recorded (a retransmission) is ignored.
func (s *Store) AllocatePortBlock(ctx context.Context, b nv.PortBlock) error {
	private, public, err := blockAddrs(b.Private, b.Public)
	if err != nil {
		return fmt.Errorf("sqlite: allocate port block: %w", err)
	}
	if b.FirstPort > b.LastPort {
		return fmt.Errorf("sqlite: allocate port block: first port %d after last port %d", b.FirstPort, b.LastPort)
	}
	_, err = s.exec(ctx, `
INSERT INTO port_blocks (private, public, first_port, last_port, start_at, end_at)
VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		private, public, b.FirstPort, b.LastPort, unixNano(b.Start), unixNano(b.End))
	if err != nil {
		return fmt.Errorf("sqlite: allocate port block: %w", err)
	}
	return nil
}

// ReleasePortBlock ends, at time at, the open allocation of public ports
// first..last to private, and reports whether there was one.
func (s *Store) ReleasePortBlock(ctx context.Context, private, public netip.Addr, first, last uint16, at time.Time) (bool, error) {
	priv, pub, err := blockAddrs(private, public)
	if err != nil {
		return false, fmt.Errorf("sqlite: release port block: %w", err)
	}
	end := unixNano(at)
	if end == 0 {
		end = 1 // 0 means still allocated
	}
	n, err := s.exec(ctx, `
UPDATE port_blocks SET end_at = ?
WHERE private = ? AND public = ? AND first_port = ? AND last_port = ? AND end_at = 0`,
		end, priv, pub, first, last)
	if err != nil {
		return false, fmt.Errorf("sqlite: release port block: %w", err)
	}
	return n > 0, nil
}

// PrivateAddrFor returns the private address that held public's port at
// time at: the allocation covering the port that started at or before at
// and had not ended by then, the latest started if several do.
func (s *Store) PrivateAddrFor(ctx context.Context, public netip.AddrPort, at time.Time) (netip.Addr, error) {
	a := public.Addr().Unmap()
	if !a.IsValid() {
		return netip.Addr{}, fmt.Errorf("sqlite: private addr for: invalid address: %w", nv.ErrNotFound)
	}
	t := unixNano(at)
	var private string
	err := s.queryRow(ctx, `
SELECT private FROM port_blocks
WHERE public = ?1 AND first_port <= ?2 AND last_port >= ?2 AND start_at <= ?3 AND (end_at = 0 OR end_at > ?3)
ORDER BY start_at DESC, id DESC LIMIT 1`, a.String(), public.Port(), t).Scan(&private)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("sqlite: private addr for: %w", notFound(err))
	}
	addr, err := netip.ParseAddr(private)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("sqlite: private addr for: %w", err)
	}
	return addr, nil
}

func blockAddrs(private, public netip.Addr) (string, string, error) {
	if !private.IsValid() || !public.IsValid() {
		return "", "", fmt.Errorf("invalid address")
	}
	return private.Unmap().String(), public.Unmap().String(), nil
}
