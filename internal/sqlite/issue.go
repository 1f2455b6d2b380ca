package sqlite

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

// IssueToken stores a /token request's writes as one op of the writer: the
// jti (first), the redemption, the token and its usage record, with the
// statements of ConsumeJTI, RedeemGrant, SaveToken and RecordUsage. A
// failed op is rolled back whole (writer.go), so a failed step undoes the
// steps before it and nothing of the request is stored; its batch-mates are
// unaffected. A failure of the first step (a replayed jti, or a lost
// redemption when there is no jti) has written nothing and is answered
// without rolling back its batch (noEffect, writer.go); a failure of a
// later step is not marked.
// Being one op of the one writer, it runs wholly before or wholly after any
// other write (a RevokeGrant, a concurrent redemption of the same code).
func (s *Store) IssueToken(ctx context.Context, ti nv.TokenIssue) error {
	if ti.Token.GrantID == "" {
		return errors.New("sqlite: issue token: the token names no grant to redeem")
	}
	err := s.writeThen(ctx, func(tx *wtx) error {
		if ti.JTI.ID != "" {
			err := consumeJTI(tx, ti.JTI.Issuer, ti.JTI.ID, ti.JTI.ExpiresAt, ti.Now)
			if err, ok := unmark(err); ok && errors.Is(err, nv.ErrConsumed) {
				return noEffect(nv.ErrJTIReplayed) // the first step: nothing written
			} else if err != nil {
				return fmt.Errorf("consume jti: %w", err)
			}
		}
		if err := redeemGrant(tx, ti.Token.GrantID, ti.GrantData, ti.Now); err != nil {
			err, ok := unmark(err)
			err = fmt.Errorf("redeem grant: %w", err)
			if ok && ti.JTI.ID == "" {
				return noEffect(err) // the first step: nothing written
			}
			return err
		}
		if err := saveToken(tx, ti.Token); err != nil {
			err, _ := unmark(err) // written before: the batch must undo it
			return fmt.Errorf("save token: %w", err)
		}
		if err := recordUsage(tx, ti.Usage); err != nil {
			return fmt.Errorf("record usage: %w", err)
		}
		return nil
	}, func() {
		s.grants.drop(ti.Token.GrantID)
		s.tokc.add(ti.Token.Hash, ti.Token.ClientID, ti.Token.ExpiresAt, time.Now())
	})
	if err != nil {
		return fmt.Errorf("sqlite: issue token: %w", err)
	}
	return nil
}
