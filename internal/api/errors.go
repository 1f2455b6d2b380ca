package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/numbergate/numbergate/internal/nv"
)

// statusByCode is the one table that turns a CAMARA code into its HTTP
// status (Commonalities r4.2 Generic4xx/5xx responses, NumberVerification
// 2.1.0 PhoneNumberVerificationPermissionDenied403).
var statusByCode = map[nv.Code]int{
	nv.CodeInvalidArgument:    http.StatusBadRequest,
	nv.CodeUnauthenticated:    http.StatusUnauthorized,
	nv.CodePermissionDenied:   http.StatusForbidden,
	nv.CodeNotNetworkAuthn:    http.StatusForbidden,
	nv.CodeNotFound:           http.StatusNotFound,
	nv.CodeMethodNotAllowed:   http.StatusMethodNotAllowed,
	nv.CodeUnsupportedMedia:   http.StatusUnsupportedMediaType,
	nv.CodeTooManyRequests:    http.StatusTooManyRequests,
	nv.CodeQuotaExceeded:      http.StatusTooManyRequests,
	nv.CodeInternal:           http.StatusInternalServerError,
	nv.CodeServiceUnavailable: http.StatusServiceUnavailable,
}

// msgInternal is the only message a 500 ever carries.
const msgInternal = "Unknown server error. Typically a server bug."

// msgUnavailable is the message of a 503 caused by nv.ErrUnavailable.
const msgUnavailable = "Service temporarily unavailable. Try again later."

// StatusFor returns the HTTP status of a CAMARA code; ok is false for a code
// the table does not know (it is answered as 500 INTERNAL).
func StatusFor(code nv.Code) (status int, ok bool) {
	status, ok = statusByCode[code]
	return status, ok
}

// ErrorInfo is the CAMARA error body.
type ErrorInfo struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ErrorInfoFor turns err into the body to send. An *nv.Error with a known
// code keeps its code and message; an INTERNAL error, an unknown code or any
// other error becomes 500 INTERNAL with a generic message, so no detail leaks;
// except nv.ErrUnavailable (the store cannot serve right now), which is 503
// UNAVAILABLE. The second result reports whether err's detail belongs in the
// log (an internal error or an unavailable store).
func ErrorInfoFor(err error) (ErrorInfo, bool) {
	var e *nv.Error
	if errors.As(err, &e) {
		if status, ok := statusByCode[e.Code]; ok && e.Code != nv.CodeInternal {
			msg := e.Message
			if msg == "" {
				msg = http.StatusText(status)
			}
			return ErrorInfo{Status: status, Code: string(e.Code), Message: msg}, false
		}
	}
	if errors.Is(err, nv.ErrUnavailable) {
		// The store cannot serve right now (disk full, database down):
		// nothing was changed, the caller may retry. The cause is for
		// the log.
		return ErrorInfo{Status: http.StatusServiceUnavailable, Code: string(nv.CodeServiceUnavailable), Message: msgUnavailable}, true
	}
	return ErrorInfo{Status: http.StatusInternalServerError, Code: string(nv.CodeInternal), Message: msgInternal}, true
}

// WriteError writes err as a CAMARA error response (status, JSON body,
// Cache-Control: no-store). It does not log; callers that can see an
// internal error log it themselves. Other edges of numbergate (a rate limiter
// answering 429 TOO_MANY_REQUESTS, for example) can use it so that every
// CAMARA error leaves by the same path.
func WriteError(w http.ResponseWriter, err error) ErrorInfo {
	info, _ := ErrorInfoFor(err)
	writeJSON(w, info.Status, info)
	return info
}

// writeJSON writes v as the JSON body of a response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil { // only our own fixed types are written: cannot happen
		status = http.StatusInternalServerError
		body = []byte(`{"status":500,"code":"INTERNAL","message":"` + msgInternal + `"}`)
	}
	writeBody(w, status, body)
}

// Header values every answer carries, assigned without allocating
// (never modified: a handler that wants another value replaces the slice).
var (
	contentTypeJSON = []string{"application/json"}
	cacheNoStore    = []string{"no-store"}
)

// writeBody writes body, JSON already encoded, as the response with status.
func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Cache-Control"] = cacheNoStore
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
