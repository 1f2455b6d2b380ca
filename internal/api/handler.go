package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

// Paths of the Number Verification v2 API.
const (
	BasePath              = "/number-verification/v2"
	VerifyPath            = BasePath + "/verify"
	DevicePhoneNumberPath = BasePath + "/device-phone-number"
)

// Operation names passed to Options.Observe and written to the log (the
// CAMARA operationIds, plus one for requests that match no operation).
const (
	OpVerify            = "phoneNumberVerify"
	OpDevicePhoneNumber = "phoneNumberShare"
	OpUnknown           = "unknown"
)

// CodeOK is the code passed to Options.Observe for a 200 answer.
const CodeOK = "OK"

// CodeClientClosedRequest is the outcome of a call whose caller went away
// (its request's context ended) before it was answered: not a server
// error, so it is logged at INFO and observed apart from INTERNAL. Nothing
// was changed unless the store had already taken the write, in which case
// the call's real outcome is answered instead.
const CodeClientClosedRequest = "CLIENT_CLOSED_REQUEST"

// StatusClientClosedRequest is the status logged (and written, to no one)
// for CodeClientClosedRequest: 499, nginx's convention.
const StatusClientClosedRequest = 499

// Options are the handler's injected dependencies; every field is optional.
type Options struct {
	// Now is the clock used to decide token expiry (time.Now if nil).
	Now func() time.Time
	// Logger receives one record per request (slog.Default() if nil).
	Logger *slog.Logger
	// Observe, if set, is called once per request with the operation (one
	// of the Op constants) and the outcome: CodeOK or the CAMARA error code
	// sent. It must be safe for concurrent use.
	Observe func(operation, code string)
	// Usage, if set, is given one usage record per call whose token was
	// found (client, purpose, scopes, source, result; never the number),
	// for billing. It must be safe for concurrent use.
	Usage func(ctx context.Context, r nv.UsageRecord)
	// UsageStore, if set, keeps those usage records instead of Usage: each
	// is written in the same atomic store operation that consumes the
	// token (nv.TokenUsageStore.ConsumeTokenFor), so a call costs one
	// durable write, not two, and a record exists if and only if its
	// token was consumed. Tokens are then consumed through it.
	UsageStore nv.TokenUsageStore
}

type handler struct {
	tokens  nv.TokenStore
	now     func() time.Time
	log     *slog.Logger
	observe func(operation, code string)
	usage   func(ctx context.Context, r nv.UsageRecord)
	// usageStore, when set, consumes tokens and stores their usage
	// records in one write (usage is then not called).
	usageStore nv.TokenUsageStore
}

// NewHandler returns the Number Verification v2 API. It answers every path
// it is given: mount it at BasePath+"/" (or at "/" of a dedicated listener);
// paths that are not an operation get 404 NOT_FOUND.
func NewHandler(tokens nv.TokenStore, opts Options) http.Handler {
	h := &handler{tokens: tokens, now: opts.Now, log: opts.Logger, observe: opts.Observe, usage: opts.Usage, usageStore: opts.UsageStore}
	if h.usageStore != nil {
		h.usage = nil
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	return h
}

// exchange carries what a request learnt, for the one log record and the
// metrics hook.
type exchange struct {
	op        string
	corr      string
	tokenHash string // hex SHA-256 of the token, "" before step 3
	clientID  string
	token     nv.AccessToken // the consumed token, when consumed
	consumed  bool
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Every answer leaves through writeJSON, which sets Cache-Control.
	xv := exchange{op: OpUnknown}
	x := &xv
	switch r.URL.Path {
	case VerifyPath:
		x.op = OpVerify
	case DevicePhoneNumberPath:
		x.op = OpDevicePhoneNumber
	}

	// 1. x-correlator.
	corr, present, err := correlator(r.Header)
	if err != nil {
		h.fail(w, r, x, err)
		return
	}
	if present {
		// The request's own one-value slice, echoed as is.
		w.Header()[correlatorHeader] = r.Header[correlatorHeader]
		x.corr = corr
	}

	// 2. Route.
	var want string
	switch x.op {
	case OpVerify:
		want = http.MethodPost
	case OpDevicePhoneNumber:
		want = http.MethodGet
	default:
		h.fail(w, r, x, nv.Errorf(nv.CodeNotFound, "The specified resource is not found."))
		return
	}
	if r.Method != want {
		w.Header().Set("Allow", want)
		h.fail(w, r, x, nv.Errorf(nv.CodeMethodNotAllowed, "The requested method is not allowed on this resource; use %s.", want))
		return
	}

	// 3. Authorization header.
	token, err := bearerToken(r.Header)
	if err != nil {
		h.fail(w, r, x, err)
		return
	}
	x.tokenHash = nv.HashToken(token)

	// 4. Body, fully validated before the token is spent.
	var req verifyRequest
	if x.op == OpVerify {
		if req, err = readVerifyRequest(r); err != nil {
			h.fail(w, r, x, err)
			return
		}
	}

	// 5-7. Token.
	scope := nv.ScopeVerify
	if x.op == OpDevicePhoneNumber {
		scope = nv.ScopeDevicePhoneNumber
	}
	phone, err := h.authorize(r.Context(), x, scope)
	if err != nil {
		h.fail(w, r, x, err)
		return
	}

	// 8. Answer.
	if x.op == OpDevicePhoneNumber {
		// A valid E.164 number ('+' and digits) needs no JSON escaping.
		h.ok(w, r, x, append(append(append(make([]byte, 0, 48), `{"devicePhoneNumber":"`...), phone...), `"}`...))
		return
	}
	var verified bool
	if req.HashedPhoneNumber != "" {
		verified = phone.MatchesHash(req.HashedPhoneNumber)
	} else {
		verified = subtle.ConstantTimeCompare([]byte(req.PhoneNumber), []byte(phone)) == 1
	}
	if verified {
		h.ok(w, r, x, bodyVerified)
	} else {
		h.ok(w, r, x, bodyNotVerified)
	}
}

// The two answers of /verify (what encoding/json writes for them).
var (
	bodyVerified    = []byte(`{"devicePhoneNumberVerified":true}`)
	bodyNotVerified = []byte(`{"devicePhoneNumberVerified":false}`)
)

// authorize consumes the token (single use) and checks its scope and how its
// subscriber was authenticated; it returns the subscriber's number. With a
// usage store, the call's usage record is stored with the consumption.
func (h *handler) authorize(ctx context.Context, x *exchange, scope string) (nv.PhoneNumber, error) {
	now := h.now()
	var (
		t   nv.AccessToken
		err error
	)
	if h.usageStore != nil {
		op := x.op
		t, err = h.usageStore.ConsumeTokenFor(ctx, x.tokenHash, now, func(t nv.AccessToken, err error) (nv.UsageRecord, bool) {
			_, err = tokenAnswer(t, err, scope)
			return usageRecord(t, op, resultCode(err), now), true
		})
	} else {
		t, err = h.tokens.ConsumeToken(ctx, x.tokenHash, now)
	}
	switch {
	case err == nil, errors.Is(err, nv.ErrExpired):
		x.clientID, x.token, x.consumed = t.ClientID, t, true
		return tokenAnswer(t, err, scope)
	case errors.Is(err, nv.ErrNotFound):
		return "", nv.Errorf(nv.CodeUnauthenticated, "The access token is unknown or has been revoked. A new authentication is required.")
	case errors.Is(err, nv.ErrConsumed):
		return "", nv.Errorf(nv.CodeUnauthenticated, "The access token has already been used: Number Verification access tokens are single-use. A new authentication is required.")
	default:
		return "", fmt.Errorf("consume token: %w", err)
	}
}

// tokenAnswer is what a call answers once its token is consumed (err is
// nil, or nv.ErrExpired): the subscriber's number, or the error to send. It
// is a pure function, so the usage record can be decided inside the store
// operation that consumes the token.
func tokenAnswer(t nv.AccessToken, err error, scope string) (nv.PhoneNumber, error) {
	if err != nil {
		return "", nv.Errorf(nv.CodeUnauthenticated, "The access token has expired. A new authentication is required.")
	}
	if !t.HasScope(scope) {
		return "", nv.Errorf(nv.CodePermissionDenied, "Client does not have sufficient permissions to perform this action: the access token lacks scope %s.", scope)
	}
	if !t.AuthMethod.ByMobileNetwork() {
		return "", nv.Errorf(nv.CodeNotNetworkAuthn, "Client must authenticate via the mobile network to use this service.")
	}
	phone, err := nv.ParsePhoneNumber(string(t.MSISDN))
	if err != nil {
		return "", fmt.Errorf("token of client %q holds no valid phone number", t.ClientID)
	}
	return phone, nil
}

// resultCode is the code an answer with err carries: CodeOK for nil.
func resultCode(err error) string {
	if err == nil {
		return CodeOK
	}
	info, _ := ErrorInfoFor(err)
	return info.Code
}

// usageRecord is the usage record of an API call answered with code.
func usageRecord(t nv.AccessToken, op, code string, now time.Time) nv.UsageRecord {
	return nv.UsageRecord{At: now.UTC(), ClientID: t.ClientID, Event: nv.UsageAPICall, Operation: op,
		Purpose: t.Purpose, Scopes: t.Scopes, Result: code, Source: t.Source}
}

func (h *handler) ok(w http.ResponseWriter, r *http.Request, x *exchange, body []byte) {
	writeBody(w, http.StatusOK, body)
	h.record(r, x, http.StatusOK, CodeOK, nil)
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, x *exchange, err error) {
	info, internal := ErrorInfoFor(err)
	if internal && info.Status == http.StatusInternalServerError && r.Context().Err() != nil {
		// The caller went away: whatever failed after that (the store
		// refuses a write for a context that ended, a read is
		// interrupted) is not a server fault.
		w.WriteHeader(StatusClientClosedRequest)
		h.record(r, x, StatusClientClosedRequest, CodeClientClosedRequest, nil)
		return
	}
	if info.Status == http.StatusUnauthorized {
		// RFC 6750 section 3: a challenge, with invalid_token once a
		// well-formed token was presented and refused.
		challenge := `Bearer realm="numbergate"`
		if x.tokenHash != "" {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
	}
	writeJSON(w, info.Status, info)
	var detail error
	if internal {
		detail = err
	}
	h.record(r, x, info.Status, info.Code, detail)
}

// record writes the request's one log record and calls the metrics hook.
func (h *handler) record(r *http.Request, x *exchange, status int, code string, detail error) {
	if h.observe != nil {
		h.observe(x.op, code)
	}
	if h.usage != nil && x.consumed {
		h.usage(r.Context(), usageRecord(x.token, x.op, code, h.now()))
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	ctx := r.Context()
	if !h.log.Enabled(ctx, level) {
		return
	}
	var buf [8]slog.Attr
	attrs := append(buf[:0],
		slog.String("operation", x.op),
		slog.String("method", r.Method),
		slog.Int("status", status),
		slog.String("code", code),
	)
	if x.corr != "" {
		attrs = append(attrs, slog.String("x_correlator", x.corr))
	}
	if x.tokenHash != "" {
		attrs = append(attrs, slog.String("token_hash_prefix", x.tokenHash[:8]))
	}
	if x.clientID != "" {
		attrs = append(attrs, slog.String("client_id", x.clientID))
	}
	if detail != nil {
		attrs = append(attrs, slog.String("error", detail.Error()))
	}
	h.log.LogAttrs(ctx, level, "number verification request", attrs...)
}
