// Package nvclient is a Go client for app backends calling a CAMARA Number
// Verification provider such as numbergate: it runs the OpenID Connect
// frontend flow with network-based authentication and calls the Number
// Verification v2 API.
//
// The flow, as the app sees it:
//
//  1. New fetches the provider's discovery document and keys.
//  2. AuthorizationURL builds the /authorize URL with a fresh state, nonce
//     and PKCE S256 verifier and exactly one dpv: purpose (optionally as a
//     signed request object). The app keeps the returned Pending in the
//     user's server-side session and redirects the user's browser to
//     Pending.AuthURL; the device must make that request over mobile data,
//     where the operator recognises it.
//  3. The provider redirects back to the app's redirect URI. Callback
//     checks the state, turns an error redirect (access_denied: the network
//     did not recognise the device) into an *Error, and exchanges the code
//     at /token with a private_key_jwt client assertion (ES256, EdDSA or
//     RS256 key, from a JWK or PEM). The ID token is verified.
//  4. Verify asks whether a number (plain, or hashed here or by the
//     caller) is the device's; DevicePhoneNumber returns it. Each access
//     token answers one call.
//
// Every failure from the provider is an *Error carrying the HTTP status,
// the OAuth or CAMARA code, the message and the x-correlator. Every call
// takes a context. A Client holds no per-user state and no globals, and is
// safe for concurrent use.
//
// Against `numbergate sandbox`, ReadCredentials loads the demo client from
// the sandbox-client.json the sandbox writes, and LoginHint "tel:+E164"
// chooses the simulated device's number (numbers starting +999 simulate a
// device the network does not recognise).
package nvclient
