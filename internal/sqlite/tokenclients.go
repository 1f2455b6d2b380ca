package sqlite

import (
	"context"
	"fmt"
	"time"
)

// tokenClients names the client of each access token this process stored,
// by the token's hash, until the token's expiry: what the API's rate limit
// and daily quota need to know of a call before its token is spent
// (limits.Guard), without reading the database. A token's client never
// changes, so an entry is never wrong while its token exists; the writer
// adds entries after the commit that stored the token and clears them all
// after a commit that revoked a grant (its tokens are deleted, and which
// hashes they had is not known here). A miss (a token stored by another
// process or node, an entry rotated out, an expired token) reads the
// database, so a lookup answers what the database holds except for a token
// another process revoked since: its calls are then still counted against
// its client's rate and quota before the API answers 401, as a spent
// token's are. At most 2 x maxTokenClients entries (about 20 MB) are held
// (recent.go).
type tokenClients struct {
	r recent[string, tokenClient]
}

type tokenClient struct {
	client  string
	expires int64 // unix nanoseconds: the token's ExpiresAt
}

const (
	maxTokenClients = 1 << 16
	tokenClientsGen = 5 * time.Minute // nv.MaxTokenLifetime
)

func newTokenClients() tokenClients {
	return tokenClients{r: recent[string, tokenClient]{max: maxTokenClients, gen: tokenClientsGen}}
}

// add records a stored token (on the writer, after its commit).
func (c *tokenClients) add(hash, client string, expires time.Time, now time.Time) {
	c.r.put(hash, tokenClient{client: client, expires: unixNano(expires)}, now)
}

// clear forgets every entry (after a commit that deleted tokens).
func (c *tokenClients) clear() { c.r.clear() }

// get returns the client of a live token stored by this process.
func (c *tokenClients) get(hash string, now time.Time) (string, bool) {
	e, ok := c.r.get(hash)
	if !ok || e.expires <= unixNano(now) {
		return "", false
	}
	return e.client, true
}

// TokenClient returns the client of the access token with this hash
// without consuming it (nv.ErrNotFound if there is none): from memory for
// a live token this process stored, else from the database. It answers for
// spent tokens too, as Token does.
func (s *Store) TokenClient(ctx context.Context, hash string) (string, error) {
	if client, ok := s.tokc.get(hash, time.Now()); ok {
		return client, nil
	}
	var client string
	if err := s.queryRow(ctx, "SELECT client_id FROM tokens WHERE hash = ?", hash).Scan(&client); err != nil {
		return "", fmt.Errorf("sqlite: token client: %w", notFound(err))
	}
	return client, nil
}
