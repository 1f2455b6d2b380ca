package nv

import (
	"errors"
	"fmt"
)

// Sentinel errors every store backend returns.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	// ErrConsumed is returned when a single-use value (code, token, jti) was
	// already used.
	ErrConsumed = errors.New("already used")
	// ErrExpired is returned when a value exists but its lifetime is over.
	ErrExpired = errors.New("expired")
	// ErrUnknownDevice is returned by a Resolver that cannot tell which
	// subscriber is behind a connection.
	ErrUnknownDevice = errors.New("device not identified by the mobile network")
	// ErrUnavailable is wrapped by a store that cannot serve right now:
	// the disk is full, an I/O error, the database unreachable, a pool
	// exhausted past its timeout. Nothing was changed; the caller may try
	// again later. The edges map it once: the API answers 503 UNAVAILABLE,
	// /token and /authorize temporarily_unavailable, RADIUS sends no
	// Accounting-Response (the gateway retries), /readyz is not ready.
	ErrUnavailable = errors.New("store unavailable")
)

// Code is a CAMARA error code. The HTTP edge maps each to its status once.
type Code string

// CAMARA error codes numbergate emits (Commonalities r4.2, NumberVerification 2.1.0).
const (
	CodeInvalidArgument    Code = "INVALID_ARGUMENT"
	CodeUnauthenticated    Code = "UNAUTHENTICATED"
	CodePermissionDenied   Code = "PERMISSION_DENIED"
	CodeNotNetworkAuthn    Code = "NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK"
	CodeTooManyRequests    Code = "TOO_MANY_REQUESTS"
	CodeQuotaExceeded      Code = "QUOTA_EXCEEDED"
	CodeNotFound           Code = "NOT_FOUND"
	CodeInternal           Code = "INTERNAL"
	CodeUnsupportedMedia   Code = "UNSUPPORTED_MEDIA_TYPE"
	CodeMethodNotAllowed   Code = "METHOD_NOT_ALLOWED"
	CodeServiceUnavailable Code = "UNAVAILABLE"
)

// Error is a domain error with a CAMARA code and a message safe to show to
// the caller (it never contains a phone number or a token).
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf builds an *Error.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err if it is (or wraps) an *Error, and
// CodeInternal otherwise.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
