package authz

import (
	"context"
	"errors"
	"net/http"

	"github.com/numbergate/numbergate/internal/nv"
)

// A caller that disconnects mid-request (its request's context ends) makes
// every store call that follows fail. That is not the server's fault and
// nothing was changed (a write the store had already taken completes and
// answers its real outcome): such a failure is logged at INFO, /token
// answers 499 client_closed_request (to no one, nginx's convention), and
// /authorize counts it as client_closed_request, so that operators' ERROR
// alarms and server_error counts are left to real faults.

// statusClientClosedRequest is what /token answers a caller that went away.
const statusClientClosedRequest = 499

// clientGone reports whether err came from the caller going away: the
// request's context ended. An unavailable store is reported as such.
func clientGone(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() != nil && !errors.Is(err, nv.ErrUnavailable)
}

// logFault logs an internal failure at ERROR, or at INFO when the caller
// went away.
func (s *Server) logFault(ctx context.Context, msg string, err error, args ...any) {
	args = append(args, "err", err)
	if clientGone(ctx, err) {
		s.log.InfoContext(ctx, msg+" (the client went away)", args...)
		return
	}
	s.log.ErrorContext(ctx, msg, args...)
}

// clientGoneToken answers a /token whose caller went away.
func (s *Server) clientGoneToken(w http.ResponseWriter, r *http.Request, clientID string) {
	s.refuseToken(w, r, clientID, statusClientClosedRequest, "client_closed_request", "the client went away before the answer")
}
