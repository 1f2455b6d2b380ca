package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/numbergate/numbergate/internal/nv"
)

// Keys of the custom data the authentication policy leaves on a grant.
const (
	storeMSISDN  = "msisdn"
	storeMethod  = "auth_method"
	storeSource  = "source"
	storePurpose = "purpose"
)

// engineStore adapts nv.Store to the engine's manager interfaces. Grants and
// sessions are kept as the engine's JSON; what must be enforced (single use
// of codes, revocation) is enforced by the store in one atomic operation.
type engineStore struct {
	st            nv.Store
	tokenLifetime time.Duration
	now           func() time.Time
}

func notFound(err error) error {
	if errors.Is(err, nv.ErrNotFound) {
		return goidc.ErrNotFound
	}
	return err
}

// SaveSession implements goidc.AuthManager.
func (s *engineStore) SaveSession(ctx context.Context, as *goidc.AuthnSession) error {
	data, err := json.Marshal(as)
	if err != nil {
		return fmt.Errorf("encode authorization session: %w", err)
	}
	return s.st.SaveAuthSession(ctx, nv.AuthSession{ID: as.ID, Data: data, ExpiresAt: time.Unix(int64(as.ExpiresAt), 0)})
}

// Session implements goidc.AuthManager.
func (s *engineStore) Session(ctx context.Context, id string) (*goidc.AuthnSession, error) {
	rec, err := s.st.AuthSession(ctx, id, s.now())
	if err != nil {
		return nil, notFound(err)
	}
	var as goidc.AuthnSession
	if err := json.Unmarshal(rec.Data, &as); err != nil {
		return nil, fmt.Errorf("decode authorization session: %w", err)
	}
	return &as, nil
}

// GrantByAuthCode implements goidc.AuthManager. A revoked grant's code is
// not found, so every later attempt is invalid_grant.
func (s *engineStore) GrantByAuthCode(ctx context.Context, code string) (*goidc.Grant, error) {
	rec, err := s.st.GrantByAuthCode(ctx, code)
	if err != nil {
		return nil, notFound(err)
	}
	return decodeGrant(rec.Data)
}

// Grant implements goidc.GrantManager.
func (s *engineStore) Grant(ctx context.Context, id string) (*goidc.Grant, error) {
	rec, err := s.st.Grant(ctx, id)
	if err != nil {
		return nil, notFound(err)
	}
	return decodeGrant(rec.Data)
}

func decodeGrant(data []byte) (*goidc.Grant, error) {
	var g goidc.Grant
	if err := json.Unmarshal(data, &g); err != nil {
		return nil, fmt.Errorf("decode grant: %w", err)
	}
	return &g, nil
}

// SaveGrant implements goidc.GrantManager. The engine saves a grant when it
// is created at /authorize, when its code is redeemed, and when it is
// revoked (after any failed redemption, a reused code included).
func (s *engineStore) SaveGrant(ctx context.Context, g *goidc.Grant) error {
	if g.RevokedAt != 0 {
		return s.st.RevokeGrant(ctx, g.ID)
	}
	data, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("encode grant: %w", err)
	}
	if g.AuthCodeConsumedAt != 0 {
		err := s.st.RedeemGrant(ctx, g.ID, data, s.now())
		switch {
		case errors.Is(err, nv.ErrConsumed), errors.Is(err, nv.ErrNotFound):
			// Another request (maybe on another node) redeemed it first.
			return goidc.WrapError(goidc.ErrorCodeInvalidGrant, "the authorization code has already been redeemed", err)
		case err != nil:
			return err
		}
		return nil
	}
	// The grant must outlive its code and the tokens it may issue, so that
	// a late reuse of the code still finds and revokes them.
	expires := time.Unix(int64(g.AuthCodeExpiresAt), 0).Add(s.tokenLifetime + time.Minute)
	return s.st.CreateGrant(ctx, nv.Grant{ID: g.ID, AuthCode: g.AuthCode, Data: data, ExpiresAt: expires})
}

// SaveToken implements goidc.OpaqueTokenManager. The record was already
// stored by saveAccessToken (the engine's token handler), which also sees
// the grant and so the subscriber; nothing is left to do here.
func (s *engineStore) SaveToken(context.Context, *goidc.Token) error { return nil }

// Token implements goidc.OpaqueTokenManager (used only by engine features
// numbergate leaves off, such as introspection).
func (s *engineStore) Token(ctx context.Context, value string) (*goidc.Token, error) {
	t, err := s.st.Token(ctx, nv.HashToken(value))
	if err != nil {
		return nil, notFound(err)
	}
	return &goidc.Token{
		ID: value, GrantID: t.GrantID, ClientID: t.ClientID,
		CreatedAt: int(t.IssuedAt.Unix()), ExpiresAt: int(t.ExpiresAt.Unix()),
		Format: goidc.TokenFormatOpaque, Type: goidc.TokenTypeBearer,
		Scopes: strings.Join(append(append([]string(nil), t.Scopes...), t.Purpose), " "),
	}, nil
}

// saveAccessToken is the engine's token handler: it stores the hash of a
// freshly issued opaque token with what the API needs to answer.
func (s *engineStore) saveAccessToken(ctx context.Context, tkn *goidc.Token, g *goidc.Grant) error {
	str := func(k string) string { v, _ := g.Store[k].(string); return v }
	msisdn, err := nv.ParsePhoneNumber(str(storeMSISDN))
	if err != nil {
		return fmt.Errorf("grant %s carries no valid subscriber number", g.ID)
	}
	var scopes []string
	purpose := ""
	for _, sc := range nv.SplitScope(tkn.Scopes) {
		if strings.HasPrefix(sc, nv.PurposePrefix) {
			purpose = sc
			continue
		}
		scopes = append(scopes, sc)
	}
	if purpose == "" {
		purpose = str(storePurpose)
	}
	err = s.st.SaveToken(ctx, nv.AccessToken{
		Hash:       nv.HashToken(tkn.ID),
		GrantID:    g.ID,
		ClientID:   tkn.ClientID,
		MSISDN:     msisdn,
		Scopes:     scopes,
		Purpose:    purpose,
		AuthMethod: nv.AuthMethod(str(storeMethod)),
		Source:     str(storeSource),
		IssuedAt:   time.Unix(int64(tkn.CreatedAt), 0),
		ExpiresAt:  time.Unix(int64(tkn.ExpiresAt), 0),
	})
	if errors.Is(err, nv.ErrNotFound) {
		// A concurrent redemption of the same code lost and revoked the
		// grant before this token was stored: no token is issued.
		return goidc.WrapError(goidc.ErrorCodeInvalidGrant, "the authorization code has already been redeemed", err)
	}
	return err
}

// Client implements goidc.DCRManager's lookup: onboarded clients come from
// the store, so `numbergate clients add` takes effect without a restart.
func (s *engineStore) Client(ctx context.Context, id string) (*goidc.Client, error) {
	c, err := s.st.Client(ctx, id)
	if err != nil {
		return nil, notFound(err)
	}
	return engineClient(c)
}

// SaveClient and DeleteClient complete goidc.DCRManager. Dynamic client
// registration is not exposed (its endpoint is not routed); clients are
// onboarded by the operator with `numbergate clients`.
func (s *engineStore) SaveClient(context.Context, *goidc.Client) error {
	return errors.New("dynamic client registration is disabled")
}

// DeleteClient: see SaveClient.
func (s *engineStore) DeleteClient(context.Context, string) error {
	return errors.New("dynamic client registration is disabled")
}

// purposeScopeID is the engine scope that matches every dpv: value; which
// purposes a client may use is checked by the policy against nv.Client.
const purposeScopeID = "dpv"

func engineClient(c nv.Client) (*goidc.Client, error) {
	var jwks goidc.JSONWebKeySet
	if err := json.Unmarshal(c.JWKS, &jwks); err != nil {
		return nil, fmt.Errorf("client %q has an unreadable JWKS: %w", c.ID, err)
	}
	scopes := append([]string(nil), c.Scopes...)
	if len(c.Purposes) > 0 {
		scopes = append(scopes, purposeScopeID)
	}
	return &goidc.Client{
		ID:        c.ID,
		CreatedAt: int(c.CreatedAt.Unix()),
		ClientMeta: goidc.ClientMeta{
			RedirectURIs:      c.RedirectURIs,
			GrantTypes:        []goidc.GrantType{goidc.GrantAuthorizationCode},
			ResponseTypes:     []goidc.ResponseType{goidc.ResponseTypeCode},
			TokenAuthnMethod:  goidc.AuthnMethodPrivateKeyJWT,
			JWKS:              &jwks,
			ScopeIDs:          strings.Join(scopes, " "),
			SubIdentifierType: goidc.SubIdentifierPairwise,
		},
	}, nil
}
