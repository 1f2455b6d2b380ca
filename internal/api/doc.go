// Package api is numbergate's CAMARA resource server: the Number
// Verification API v2 (CAMARA NumberVerification r3.2, API 2.1.0, with the
// single-use token rules of the vwip definition), served under
// /number-verification/v2.
//
// It owns the HTTP edge of the two operations, and nothing else:
//
//   - POST /number-verification/v2/verify (scope number-verification:verify;
//     operation phoneNumberVerify) answers {"devicePhoneNumberVerified": bool}
//     for a body carrying exactly one of phoneNumber or hashedPhoneNumber;
//   - GET /number-verification/v2/device-phone-number (scope
//     number-verification:device-phone-number:read; operation
//     phoneNumberShare) answers {"devicePhoneNumber": "+..."}.
//
// Access tokens are opaque bearer tokens (RFC 6750 section 2.1). The store
// keeps only their hex SHA-256 (nv.HashToken), and each one is consumed by a
// single atomic nv.TokenStore.ConsumeToken call, because Number Verification
// tokens are single-use (vwip, "Authorization and authentication").
//
// # Order of checks
//
// Every request is checked in this order; the first failure answers:
//
//  1. x-correlator header (CAMARA Commonalities, XCorrelator pattern
//     ^[a-zA-Z0-9-_:;.\/<>{}]{0,256}$): off-pattern or repeated is
//     400 INVALID_ARGUMENT, and the bad value is not echoed.
//  2. Route: an unknown path is 404 NOT_FOUND; a known path with another
//     method is 405 METHOD_NOT_ALLOWED with an Allow header.
//  3. Authorization header present, single and of the form
//     "Bearer <b64token>": otherwise 401 UNAUTHENTICATED.
//  4. Request body (verify only), parsed and validated completely WITHOUT
//     touching the store: a missing, empty, oversized (> 4 KiB), invalid or
//     non-strict body is 400 INVALID_ARGUMENT; a Content-Type other than
//     application/json (optionally with charset=utf-8) is
//     415 UNSUPPORTED_MEDIA_TYPE (Commonalities Generic415). A bad request
//     therefore never burns the caller's single-use token.
//  5. Token consumed atomically: unknown or revoked, expired, or already used
//     is 401 UNAUTHENTICATED, each with its own message.
//  6. Scope of the operation missing from the token: 403 PERMISSION_DENIED.
//  7. Token not obtained by network-based or SIM-based authentication:
//     403 NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK.
//  8. Answer 200.
//
// A rejected request changes nothing stored, except that a well-formed token
// presented with a valid request is consumed in step 5 even when step 6 or 7
// then refuses it (a token is good for one call, whatever its outcome).
//
// # Responses
//
// Every response carries Cache-Control: no-store. Errors are the CAMARA
// ErrorInfo object {"status", "code", "message"} with Content-Type
// application/json; nv.Code values map to HTTP statuses in one table
// (errors.go). Anything that is not an *nv.Error becomes 500 INTERNAL with a
// generic message; its detail goes only to the log. The x-correlator of the
// request, when present and valid, is echoed on every response, errors
// included. When the request has none, none is invented (our choice: CAMARA
// only asks to echo what the consumer sent). 401 responses also carry a
// WWW-Authenticate: Bearer challenge (RFC 6750 section 3).
//
// Logs never carry a phone number or a token: at most the first 8 hex digits
// of the token's hash.
package api
