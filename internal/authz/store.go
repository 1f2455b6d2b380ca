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

// engineStore adapts nv.Store to the engine's manager interfaces
// (goidc.AuthManager, GrantManager, OpaqueTokenManager, DCRManager).
//
// The engine (go-oidc v0.23.0) tells its storage what happened only through
// the state of the object it saves. Which numbergate operation each call is
// gets decided in one place, the event functions below (sessionEvent,
// grantEvent), and nowhere else; TestEngineEvents pins the engine's calls,
// so an upgrade that changes them fails a test rather than production.
//
//	engine call                            event            store operation
//	jti hook (WithJTIConsumer)             -                /token: none, left pending (issue.go); else ConsumeJTI
//	SaveSession(Status success|failure)    sessionFinished  none: nothing is kept
//	SaveSession(Status pending, other)     sessionPending   refused (never suspended)
//	SaveGrant(RevokedAt != 0)              grantRevoked     /token: ConsumeJTI of a pending jti, then
//	                                                        RevokeGrant (none for a replayed jti or an
//	                                                        unavailable store); else RevokeGrant
//	SaveGrant(AuthCodeConsumedAt != 0)     codeRedeemed     /token: none, left pending; else RedeemGrant
//	SaveGrant(new, with a code)            grantCreated     CreateGrant
//	token handler (WithTokenHandler)       tokenIssued      /token: IssueToken (the pending jti and
//	                                                        redemption, the token, its usage record);
//	                                                        else SaveToken, RecordUsage
//	SaveToken (OpaqueTokenManager)         -                none: tokenIssued stored it
//	(serveToken, after the engine)         -                ConsumeJTI of a jti still pending
//
// "/token" is a request served by serveToken, which carries an issueSlot
// (issue.go): a successful /token is one store operation, IssueToken.
//
// Authorization codes are kept as their SHA-256 hex, like access tokens: a
// copy of the database holds no redeemable code.
type engineStore struct {
	st            nv.Store
	tokenLifetime time.Duration
	// retainAfterCode is how long a grant is kept after its code expires:
	// the token lifetime plus the clock skew, so that a late reuse of the
	// code still finds the grant and revokes what it issued.
	retainAfterCode time.Duration
	now             func() time.Time
	clients         engineClients // the engine form of each client
}

// event names one engine event.
type event string

const (
	sessionFinished event = "session_finished"
	sessionPending  event = "session_pending"
	grantCreated    event = "grant_created"
	codeRedeemed    event = "code_redeemed"
	grantRevoked    event = "grant_revoked"
	grantUnknown    event = "grant_unknown"
)

// sessionEvent decides what a SaveSession call means. numbergate's only
// policy authenticates in one step (network-based, no interaction), so the
// engine saves a session only to record its outcome, right before it
// creates the grant (success) or redirects the error (failure). Neither is
// ever read back: the callback endpoint that would read a session is not
// routed. So nothing is written (issue 7: write nothing that is never read).
func sessionEvent(as *goidc.AuthnSession) event {
	switch as.Status {
	case goidc.StatusSuccess, goidc.StatusFailure:
		return sessionFinished
	default:
		return sessionPending
	}
}

// grantEvent decides what a SaveGrant call means. Revocation is checked
// first: the engine revokes a grant after any failed redemption, including
// one that had already marked the code consumed.
func grantEvent(g *goidc.Grant) event {
	switch {
	case g.RevokedAt != 0:
		return grantRevoked
	case g.AuthCodeConsumedAt != 0:
		return codeRedeemed
	case g.AuthCode != "":
		return grantCreated
	default:
		return grantUnknown
	}
}

// hashCode is how an authorization code is kept and looked up.
func hashCode(code string) string { return nv.HashToken(code) }

func notFound(err error) error {
	if errors.Is(err, nv.ErrNotFound) {
		return goidc.ErrNotFound
	}
	return err
}

// SaveSession implements goidc.AuthManager: see sessionEvent.
func (s *engineStore) SaveSession(_ context.Context, as *goidc.AuthnSession) error {
	switch sessionEvent(as) {
	case sessionFinished:
		return nil
	default:
		return fmt.Errorf("authorization session in state %q: numbergate never suspends an authorization", as.Status)
	}
}

// Session implements goidc.AuthManager. No session is ever stored (see
// sessionEvent); the lookup goes to the store all the same, so that a
// future policy that suspends an authorization finds what it saved.
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
	if code == "" {
		return nil, goidc.ErrNotFound
	}
	rec, err := s.st.GrantByAuthCode(ctx, hashCode(code))
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

// encodeGrant is the engine's grant as stored: without the code (the
// store indexes its hash; the engine never reads it back from the grant).
func encodeGrant(g *goidc.Grant) ([]byte, error) {
	c := *g
	c.AuthCode = ""
	data, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("encode grant: %w", err)
	}
	return data, nil
}

// SaveGrant implements goidc.GrantManager: see grantEvent.
func (s *engineStore) SaveGrant(ctx context.Context, g *goidc.Grant) error {
	switch grantEvent(g) {
	case grantRevoked:
		return s.revokeGrant(ctx, g.ID)
	case codeRedeemed:
		if sl := issueSlotOf(ctx); sl != nil {
			data, err := encodeGrant(g)
			if err != nil {
				return err
			}
			sl.grantID, sl.grantData = g.ID, data
			return nil
		}
		return s.redeemCode(ctx, g)
	case grantCreated:
		return s.createGrant(ctx, g)
	default:
		return fmt.Errorf("grant %s without a code: numbergate issues grants only with the authorization code flow", g.ID)
	}
}

// createGrant stores the grant /authorize issued. It must outlive its code
// and the tokens it may issue, so that a late reuse of the code still finds
// and revokes them; Collect removes it after that.
func (s *engineStore) createGrant(ctx context.Context, g *goidc.Grant) error {
	data, err := encodeGrant(g)
	if err != nil {
		return err
	}
	expires := time.Unix(int64(g.AuthCodeExpiresAt), 0).Add(s.retainAfterCode)
	return s.st.CreateGrant(ctx, nv.Grant{ID: g.ID, AuthCode: hashCode(g.AuthCode), Data: data, ExpiresAt: expires})
}

// redeemCode marks the code consumed; only one redemption (on any node)
// wins, the others are invalid_grant (and the engine then revokes the
// grant).
func (s *engineStore) redeemCode(ctx context.Context, g *goidc.Grant) error {
	data, err := encodeGrant(g)
	if err != nil {
		return err
	}
	err = s.st.RedeemGrant(ctx, g.ID, data, s.now())
	switch {
	case errors.Is(err, nv.ErrConsumed), errors.Is(err, nv.ErrNotFound):
		return goidc.WrapError(goidc.ErrorCodeInvalidGrant, "invalid grant", errCodeRedeemed)
	case err != nil:
		return err
	}
	return nil
}

// errCodeRedeemed explains every lost redemption race.
var errCodeRedeemed = errors.New("the authorization code has already been redeemed")

// SaveToken implements goidc.OpaqueTokenManager. The record was already
// stored by the tokenIssued event (Server.issueToken, the engine's token
// handler, which also sees the grant and so the subscriber); nothing is
// left to do here.
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

// accessToken is what the store keeps of a freshly issued opaque token:
// its hash, with what the API needs to answer.
func accessToken(tkn *goidc.Token, g *goidc.Grant) (nv.AccessToken, error) {
	str := func(k string) string { v, _ := g.Store[k].(string); return v }
	msisdn, err := nv.ParsePhoneNumber(str(storeMSISDN))
	if err != nil {
		return nv.AccessToken{}, fmt.Errorf("grant %s carries no valid subscriber number", g.ID)
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
	return nv.AccessToken{
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
	}, nil
}

// saveToken stores a token on its own (outside /token's IssueToken). The
// store refuses it if the grant was revoked meanwhile (a concurrent
// redemption of the same code lost and revoked it): then no token is
// issued at all.
func (s *engineStore) saveToken(ctx context.Context, at nv.AccessToken) error {
	err := s.st.SaveToken(ctx, at)
	if errors.Is(err, nv.ErrNotFound) {
		return goidc.WrapError(goidc.ErrorCodeInvalidGrant, "invalid grant", errCodeRedeemed)
	}
	return err
}

// Client implements goidc.DCRManager's lookup, the only way go-oidc v0.23.0
// looks clients up in a store (its alternative, static clients, is fixed at
// start-up): onboarded clients come from the store, so `numbergate clients
// add` takes effect without a restart. The registration endpoint that DCR
// would add is not routed (TestRegistrationEndpointUnreachable). The
// engine form of each client is cached (engineClients) and converted again
// only when the store's client differs.
func (s *engineStore) Client(ctx context.Context, id string) (*goidc.Client, error) {
	c, err := s.st.Client(ctx, id)
	if errors.Is(err, nv.ErrNotFound) {
		s.clients.forget(id)
	}
	if err != nil {
		return nil, notFound(err)
	}
	return s.clients.get(c)
}

// errNoRegistration answers the DCR writes: clients are onboarded by the
// operator with `numbergate clients`.
var errNoRegistration = errors.New("dynamic client registration is disabled")

// SaveClient completes goidc.DCRManager; it always fails.
func (s *engineStore) SaveClient(context.Context, *goidc.Client) error { return errNoRegistration }

// DeleteClient completes goidc.DCRManager; it always fails.
func (s *engineStore) DeleteClient(context.Context, string) error { return errNoRegistration }

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
