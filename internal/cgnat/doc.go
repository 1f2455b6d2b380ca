// Package cgnat ingests the port-block allocation log of a carrier-grade NAT
// (RFC 6888 requirement 4 asks CGNs to log such allocations; RFC 7422
// describes port-block allocation) into nv.NetworkSessionStore, so that a
// connection seen as public address and port at time t maps back to the
// private address that held the port, and from there (through the RADIUS
// session of the private address) to the subscriber.
//
// # Line format
//
// One record per line, fields separated by spaces or tabs:
//
//	2026-11-27T10:00:00Z ALLOC private=100.64.0.5 public=203.0.113.7 ports=1024-2047
//	2026-11-27T11:00:00Z RELEASE private=100.64.0.5 public=203.0.113.7 ports=1024-2047
//
// The fields, in order:
//
//   - the event time, RFC 3339 with a zone ("Z" or "+01:00"; fractional
//     seconds allowed);
//   - the operation, ALLOC or RELEASE (case-insensitive);
//   - key=value fields: private (the subscriber's private address), public
//     (the NAT's public address), ports (FIRST-LAST, or a single port), each
//     exactly once; IPv4 or IPv6; other keys (proto=, vrf=, ...) are
//     ignored, so a NAT may log more.
//
// The same line may follow a syslog header (RFC 5424, "<134>1 TIMESTAMP
// HOST APP PROCID MSGID SD ", or RFC 3164, "<134>Nov 27 10:00:00 HOST TAG: "):
// the record starts at the first RFC 3339 timestamp directly followed by
// ALLOC or RELEASE. Over UDP syslog (RFC 5426) each datagram holds one or
// more lines.
//
// A malformed line is counted, logged (its reason, never its text) and
// skipped. An allocation retransmitted or ingested twice is harmless; a
// RELEASE with no open allocation is counted as unmatched.
//
// docs/cgnat.md in the repository documents the format for NAT operators.
package cgnat
