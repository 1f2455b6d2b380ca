// Package limits owns numbergate's rate limits and daily quotas at the
// public HTTP edge, as wrappers around the routes (server.Routes.Guard):
//
//   - /authorize: requests per device address (the client address after
//     trusted proxies; IPv6 counted per /64). Excess is redirected to the
//     client with error=temporarily_unavailable when client_id and
//     redirect_uri name an onboarded client and one of its registered URIs
//     (RFC 6749 section 4.1.2.1), and answered with a 429 page otherwise.
//   - /token: requests per client (the client_id, or the iss of the client
//     assertion, of an onboarded client). Excess is 429 with Retry-After and
//     an OAuth error body. A request whose client authentication fails (401)
//     is given back, so a party that names a client it cannot authenticate
//     as does not spend that client's budget.
//   - the API: calls per client (the client of the bearer token), 429
//     TOO_MANY_REQUESTS with Retry-After; and a client's quota of calls per
//     UTC day (nv.Client.QuotaPerDay), counted in the store so every node
//     and restart shares it, 429 QUOTA_EXCEEDED with Retry-After until the
//     next UTC midnight.
//
// Rates are token buckets of golang.org/x/time/rate kept in memory per key,
// with bounded memory (see Keyed): they hold per node, so N nodes behind a
// load balancer let through up to N times the configured rate. Quotas are
// exact across nodes.
package limits
