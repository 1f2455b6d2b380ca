// Package radius is numbergate's RADIUS accounting server: the packet
// gateways (GGSN/PGW/SMF, 3GPP TS 29.061 section 16 and TS 29.561) tell it
// which subscriber holds which address, and it keeps that in an
// nv.NetworkSessionStore for the netid RADIUS and CGNAT sources.
//
// Protocol:
//
//   - RFC 2866 Accounting-Request / Accounting-Response over UDP. The
//     Request Authenticator (RFC 2866 section 3) is checked against the
//     shared secret of the sender, chosen by the packet's source address
//     among the configured client CIDRs (most specific wins).
//   - RFC 3579 section 3.2 Message-Authenticator (clarified by RFC 5080;
//     HMAC-MD5 keyed by the secret, over the packet with the
//     Message-Authenticator value and, for Accounting-Request, the
//     authenticator field zeroed as RFC 5176 section 3.4 does for
//     CoA-Request) is verified when present, and can be required per
//     client.
//   - Attributes: Acct-Status-Type, Acct-Session-Id, Acct-Session-Time,
//     Acct-Delay-Time (RFC 2866), Framed-IP-Address, Calling-Station-Id,
//     NAS-IP-Address, NAS-Identifier, Proxy-State (RFC 2865),
//     Framed-IPv6-Prefix (RFC 3162, at its own length), Event-Timestamp
//     (RFC 2869), 3GPP-IMSI (vendor 10415, type 1, TS 29.061).
//
// Semantics: every session records the client entry (Client.Name, by
// default its CIDR) the packet authenticated against, never what the packet
// says about itself. Start replaces any previous holder of the address;
// Interim-Update upserts (it recreates a session whose Start was lost) but
// never touches a session another client holds; Stop removes the session
// only if both the client and the Acct-Session-Id match; Accounting-On/Off
// purge that client's sessions last updated before the On/Off arrived (so a
// Start received after it survives even if a worker applies it first);
// sessions with no update for IdleTimeout expire. A Start or Interim-Update both with Framed-IP-Address
// and Framed-IPv6-Prefix records both addresses for the number.
//
// The Accounting-Response is sent only after the store accepted the update
// (RFC 2866 section 2: a server that cannot record must not answer, so the
// gateway retransmits). Packets from unknown senders, with a bad
// authenticator, that are not Accounting-Requests or lack the attributes
// their status needs are dropped without an answer, counted and logged
// without the number. Retransmits are harmless: the operations are
// idempotent and a packet already recorded is answered from a replay cache
// without touching the store. A Start or Interim-Update whose event is older
// than IdleTimeout is acknowledged but not applied, so an old replayed Start
// cannot take an address back.
//
// Packets are authenticated in the reading goroutine (one MD5, no store
// call) and only authentic ones are queued to a bounded pool of workers,
// sharded by address so one address's updates are applied in order; a
// flood of forged packets costs CPU but never queues ahead of valid ones.
package radius
