package sqlite

import (
	"slices"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

// grantsByCode holds each grant this process created with a code, by the
// code's hash, until its code is redeemed, the grant is revoked or it
// expires: /token reads the grant by its code (GrantByAuthCode) moments
// after /authorize created it, and that read then needs no query. The
// writer adds a grant after the commit that created it and drops it after
// the commit that redeemed its code or revoked it, so within this process
// a read answers what the database holds. Another process's redemption or
// revocation is not seen here: its grant is then answered as it was
// created, and the /token request that reads it loses the redemption in
// the store (IssueToken), which the engine answers invalid_grant and
// revokes the grant for, as it does a code replayed in this process. A
// miss reads the database. At most 2 x maxGrantsByCode grants are held
// (recent.go).
type grantsByCode struct {
	byCode recent[string, nv.Grant] // code hash -> grant
	codeOf recent[string, string]   // grant id -> code hash, to drop by id
}

const (
	maxGrantsByCode = 1 << 14
	grantsByCodeGen = time.Minute
)

func newGrantsByCode() grantsByCode {
	return grantsByCode{
		byCode: recent[string, nv.Grant]{max: maxGrantsByCode, gen: grantsByCodeGen},
		codeOf: recent[string, string]{max: maxGrantsByCode, gen: grantsByCodeGen},
	}
}

// add records a created grant (on the writer, after its commit); only an
// unredeemed, unrevoked grant with a code is kept.
func (c *grantsByCode) add(g nv.Grant, now time.Time) {
	if g.AuthCode == "" || g.CodeConsumed || g.Revoked {
		return
	}
	g.Data = slices.Clone(g.Data) // the caller's buffer stays the caller's
	c.byCode.put(g.AuthCode, g, now)
	c.codeOf.put(g.ID, g.AuthCode, now)
}

// drop forgets grant id (on the writer, after the commit that redeemed or
// revoked it).
func (c *grantsByCode) drop(id string) {
	if code, ok := c.codeOf.get(id); ok {
		c.byCode.del(code)
		c.codeOf.del(id)
	}
}

// get returns the grant holding code if it was created here and has not
// been redeemed, revoked or expired.
func (c *grantsByCode) get(code string, now time.Time) (nv.Grant, bool) {
	g, ok := c.byCode.get(code)
	if !ok || !g.ExpiresAt.IsZero() && !g.ExpiresAt.After(now) {
		return nv.Grant{}, false
	}
	g.Data = slices.Clone(g.Data) // as a read from the database: the caller's own
	return g, true
}
