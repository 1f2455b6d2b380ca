// Package loadgen drives a running numbergate as its real parties would,
// for load tools (`numbergate bench`) and for tests that need to know
// exactly what the server acknowledged (the crash and drain tests).
//
// Two drivers, both speaking the real protocols over the network:
//
//   - Flow plays an app backend and its user's Device: GET /authorize as
//     the device (from a chosen loopback source address, which a `serve`
//     static map or a RADIUS session identifies, or with a sandbox
//     login_hint), POST /token with a freshly signed ES256 private_key_jwt
//     client assertion and PKCE, then POST /number-verification/v2/verify.
//     Every answer is checked (redirect, state, iss, token response, ID
//     token signature and claims, the verification result); a wrong answer
//     is an error. Result says what the server acknowledged (code redeemed,
//     jti consumed, token spent) and carries the values used, so a caller
//     can replay them.
//
//   - Gateway sends RADIUS accounting (RFC 2866) like a packet gateway:
//     Start, Interim-Update, Stop, Accounting-On/Off, one request in flight
//     per Gateway, over its own UDP socket. Accounting runs many
//     subscribers' sessions (Start, Interim-Updates, Stop, again) across
//     many gateways and reports, per subscriber, the last request the
//     server acknowledged and the one still unanswered, which is what a
//     crash test must find afterwards.
//
// Nothing here imports the server's packages: the drivers know only the
// wire protocols, so they test what a client sees.
package loadgen
