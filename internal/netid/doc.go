// Package netid answers "which subscriber is behind this connection?" for
// network-based authentication (CAMARA Identity and Consent Management,
// frontend flow): the operator identifies the device from its mobile data
// connection, never from anything the user or the app says.
//
// Every source implements nv.Resolver and returns nv.ErrUnknownDevice when
// it does not know the connection:
//
//   - Static: a configured map of IP prefixes to numbers (longest prefix wins).
//   - RADIUS: sessions learnt from RADIUS accounting (RFC 2866) sent by the
//     packet gateways (see package radius), matched on the IPv4 address or
//     the IPv6 /64 (RFC 3162).
//   - CGNAT: a public address and port seen behind carrier NAT, mapped back
//     to the private address through the NAT's port-block allocations (see
//     package cgnat), then to the RADIUS session of that private address.
//   - Header: header enrichment (X-MSISDN and similar) inserted by the
//     operator's enrichment proxies; the HTTP edge fills
//     nv.Connection.Enrichment only for peers inside the configured proxy
//     ranges (see Enrichment).
//   - Sandbox: the simulated device number from login_hint=tel:+E164.
//
// Chain tries sources in the configured order. ParseLoginHint parses the
// CAMARA login_hint formats (tel:, ipport:, operatortoken:); an ipport hint is
// never trusted on its own to identify a device. ClientAddr implements the
// X-Forwarded-For rule (RFC 7239 section 5.2 semantics for the de-facto
// header): the right-most address not in the trusted proxy ranges.
//
// Numbers are never logged in clear (nv.PhoneNumber.Masked).
package netid
