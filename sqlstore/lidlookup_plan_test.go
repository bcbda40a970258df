package sqlstore_test

import (
	"context"
	"fmt"
	"regexp"
	"testing"

	"go.mau.fi/util/dbutil"

	"github.com/tctoken/tctoken/internal/dbtest"
)

// TestLIDLookupPlan checks that a history blob's LID lookup reaches both
// tables by key, one key per phone number, on a table just filled and not
// analysed (after the first import or a history sync). Written with EXISTS
// and a join, PostgreSQL hashed every row of the account for each blob.
func TestLIDLookupPlan(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		whatsmeowTables(t, db, true)
		s := newContainer(t, db).ForAccount(ourJID)
		fillUnanalysed(t, db, s, 20_000, false)
		users := make([]string, 700)
		for i := range users {
			users[i] = fmt.Sprint(1_000_000 + 10*i)
		}
		plan, err := s.LIDLookupPlan(ctx, users)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("plan:\n%s", plan)
		var byKey []*regexp.Regexp
		var whole *regexp.Regexp
		if db.Dialect == dbutil.Postgres {
			byKey = []*regexp.Regexp{
				regexp.MustCompile(`Index Scan using whatsmeow_lid_map_pn_key on whatsmeow_lid_map[^\n]*\n\s+Index Cond: \(pn = `),
				regexp.MustCompile(`(Index (Only )?Scan using|Bitmap Index Scan on) tctoken_tokens_pkey[^\n]*\n\s+Index Cond: \(\(our_jid = [^\n]*\) AND \(their_jid = `),
			}
			whole = regexp.MustCompile(`Seq Scan|Hash|hashed`)
		} else {
			byKey = []*regexp.Regexp{
				regexp.MustCompile(`SEARCH m USING (COVERING )?INDEX \S+ \(pn=\?\)`),
				regexp.MustCompile(`SEARCH t USING (COVERING INDEX \S+|PRIMARY KEY|INDEX \S+) \(our_jid=\? AND their_jid=\?\)`),
			}
			whole = regexp.MustCompile(`(^|\n)\s*SCAN (m|t|whatsmeow_lid_map|tctoken_tokens)\b`)
		}
		for _, re := range byKey {
			if !re.MatchString(plan) {
				t.Fatalf("the lookup does not reach a table by key (%s):\n%s", re, plan)
			}
		}
		if whole.MatchString(plan) {
			t.Fatalf("the lookup reads a table whole:\n%s", plan)
		}
	})
}
