package sqlstore

import (
	"context"
	"fmt"

	"go.mau.fi/util/dbutil"
)

// LIDLookupPlan returns the database's plan for the LID lookup of a history
// blob (LIDsForPNs with held), for the phone numbers' user parts, in the
// form the store runs on this database.
func (s *Store) LIDLookupPlan(ctx context.Context, users []string) (string, error) {
	if s.db.Dialect == dbutil.Postgres {
		return s.explain(ctx, getLIDsForPNsHeldPG, pgTextArray(users), s.ourJID)
	}
	if s.rowsAsJSON(ctx) {
		return s.explain(ctx, getLIDsForPNsHeldJSON, jsonStrings(users), s.ourJID)
	}
	args := []any{s.ourJID}
	for _, user := range users {
		args = append(args, user)
	}
	return s.explain(ctx, fmt.Sprintf(getLIDsForPNsHeldQuery, "VALUES "+s.tuplesOf(len(users), 2)), args...)
}
