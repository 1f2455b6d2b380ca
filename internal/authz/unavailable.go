package authz

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

// This file maps nv.ErrUnavailable (the store cannot serve right now) at
// /authorize and /token, whatever the engine made of the store's error: a
// request during which any store call or network lookup failed as
// unavailable is answered temporarily_unavailable (RFC 6749 section
// 4.1.2.1), never with the engine's answer.
//
//   - /token: 503 {"error":"temporarily_unavailable"}.
//   - /authorize: a redirect to the client with
//     error=temporarily_unavailable when client_id and redirect_uri are
//     valid (they are always sent in plain form, request object or not),
//     a 503 page otherwise.

// unavailableFlag is set, for one request, when a store call failed as
// nv.ErrUnavailable.
type unavailableFlag struct{ set atomic.Bool }

type unavailableKey struct{}

// noteUnavailable sets the request's flag if err is nv.ErrUnavailable, and
// returns err.
func noteUnavailable(ctx context.Context, err error) error {
	if err != nil && errors.Is(err, nv.ErrUnavailable) {
		if f, ok := ctx.Value(unavailableKey{}).(*unavailableFlag); ok {
			f.set.Store(true)
		}
	}
	return err
}

// guardUnavailable runs next with a flag in the request's context and its
// answer held back; if the flag was set, the held answer is dropped and
// temporarily_unavailable sent instead.
func (s *Server) guardUnavailable(token bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := &unavailableFlag{}
		r = r.WithContext(context.WithValue(r.Context(), unavailableKey{}, f))
		held := newBufferWriter()
		defer held.release()
		next.ServeHTTP(held, r)
		if !f.set.Load() {
			for k, v := range held.header {
				w.Header()[k] = v
			}
			status := held.status
			if status == 0 {
				status = http.StatusOK
			}
			w.WriteHeader(status)
			_, _ = w.Write(held.body.Bytes())
			return
		}
		const desc = "the service is temporarily unavailable; try again later"
		w.Header().Set("Retry-After", "5")
		if token {
			s.log.WarnContext(r.Context(), "token: store unavailable, answered temporarily_unavailable")
			writeOAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", desc)
			return
		}
		s.log.WarnContext(r.Context(), "authorize: store unavailable, answered temporarily_unavailable")
		if s.cfg.OnAuthorize != nil {
			s.cfg.OnAuthorize("temporarily_unavailable", "")
		}
		clientID, redirectURI := r.Form.Get("client_id"), r.Form.Get("redirect_uri")
		if clientID != "" && redirectURI != "" {
			if c, err := s.cfg.Store.Client(r.Context(), clientID); err == nil && slices.Contains(c.RedirectURIs, redirectURI) {
				redirectWithError(w, redirectURI, s.cfg.Issuer, r.Form.Get("state"), "temporarily_unavailable", desc)
				return
			}
		}
		_ = s.renderPage(w, http.StatusServiceUnavailable, "temporarily_unavailable", desc)
	})
}

// flagStore is the store as the authorization server uses it: the calls
// made while serving requests note nv.ErrUnavailable in the request.
type flagStore struct{ nv.Store }

func (f flagStore) Client(ctx context.Context, id string) (nv.Client, error) {
	c, err := f.Store.Client(ctx, id)
	return c, noteUnavailable(ctx, err)
}

func (f flagStore) ConsumeJTI(ctx context.Context, issuer, jti string, expiresAt, now time.Time) error {
	return noteUnavailable(ctx, f.Store.ConsumeJTI(ctx, issuer, jti, expiresAt, now))
}

func (f flagStore) SaveAuthSession(ctx context.Context, as nv.AuthSession) error {
	return noteUnavailable(ctx, f.Store.SaveAuthSession(ctx, as))
}

func (f flagStore) AuthSession(ctx context.Context, id string, now time.Time) (nv.AuthSession, error) {
	as, err := f.Store.AuthSession(ctx, id, now)
	return as, noteUnavailable(ctx, err)
}

func (f flagStore) CreateGrant(ctx context.Context, g nv.Grant) error {
	return noteUnavailable(ctx, f.Store.CreateGrant(ctx, g))
}

func (f flagStore) Grant(ctx context.Context, id string) (nv.Grant, error) {
	g, err := f.Store.Grant(ctx, id)
	return g, noteUnavailable(ctx, err)
}

func (f flagStore) GrantByAuthCode(ctx context.Context, code string) (nv.Grant, error) {
	g, err := f.Store.GrantByAuthCode(ctx, code)
	return g, noteUnavailable(ctx, err)
}

func (f flagStore) RedeemGrant(ctx context.Context, id string, data []byte, now time.Time) error {
	return noteUnavailable(ctx, f.Store.RedeemGrant(ctx, id, data, now))
}

func (f flagStore) RevokeGrant(ctx context.Context, id string) error {
	return noteUnavailable(ctx, f.Store.RevokeGrant(ctx, id))
}

func (f flagStore) SaveToken(ctx context.Context, t nv.AccessToken) error {
	return noteUnavailable(ctx, f.Store.SaveToken(ctx, t))
}

func (f flagStore) IssueToken(ctx context.Context, ti nv.TokenIssue) error {
	return noteUnavailable(ctx, f.Store.IssueToken(ctx, ti))
}

func (f flagStore) RecordUsage(ctx context.Context, r nv.UsageRecord) error {
	return noteUnavailable(ctx, f.Store.RecordUsage(ctx, r))
}

func (f flagStore) Token(ctx context.Context, hash string) (nv.AccessToken, error) {
	t, err := f.Store.Token(ctx, hash)
	return t, noteUnavailable(ctx, err)
}

// flagResolver notes an unavailable store behind a network lookup.
type flagResolver struct{ nv.Resolver }

func (f flagResolver) Resolve(ctx context.Context, c nv.Connection) (nv.Identity, error) {
	id, err := f.Resolver.Resolve(ctx, c)
	return id, noteUnavailable(ctx, err)
}
