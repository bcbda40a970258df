package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/internal/dbtest"
)

// Each prune statement reads the rows of its batch by key, although its
// outer WHERE checks the batch's conditions again (see pruneQueries): a
// plan that took those checks as a range of the expiry index instead would
// read every expired row once per batch. SQLite chose that plan for
// token_ts < ? in the outer WHERE until the checks were kept off the index.
func TestPruneStatementsReadTheBatchByKey(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		c := New(db)
		if err := c.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		s := c.ForAccount(types.NewJID("1000", types.DefaultUserServer))
		const rows = 4000
		writes := make([]TokenWrite, rows)
		senders := make([]SenderWrite, rows)
		for i := range writes {
			writes[i] = TokenWrite{Contact: types.NewJID(fmt.Sprintf("%015d", i), types.HiddenUserServer), Token: []byte("t"), TokenTS: int64(100 + i%2*10_000_000)}
			senders[i] = SenderWrite{Contact: types.NewJID(fmt.Sprintf("9%014d", i), types.HiddenUserServer), TS: 50}
		}
		if _, err := s.PutTokens(ctx, writes...); err != nil {
			t.Fatal(err)
		}
		if err := s.PutSenderTimestamps(ctx, senders...); err != nil {
			t.Fatal(err)
		}
		queries, explain, byKey := pruneQueriesSQLite, "EXPLAIN QUERY PLAN ", "(our_jid=? AND their_jid=?)"
		if db.Dialect == dbutil.Postgres {
			// As autovacuum would have by the time a prune runs.
			if _, err := db.Exec(ctx, "ANALYZE tctoken_tokens"); err != nil {
				t.Fatal(err)
			}
			queries, explain, byKey = pruneQueriesPostgres, "EXPLAIN ", "Index Scan using tctoken_tokens_pkey"
		}
		for _, stmt := range []struct {
			name, query string
			args        []any
		}{
			{"senderOnly", queries.senderOnly, []any{s.ourJID, 1000, PruneBatchSize}},
			{"clearTokens", queries.clearTokens, []any{s.ourJID, 5_000_000, 1000, 0, PruneBatchSize}},
			{"deleteRows", queries.deleteRows, []any{s.ourJID, 5_000_000, 1000, PruneBatchSize}},
		} {
			var plan []string
			err := db.DoTxn(ctx, nil, func(ctx context.Context) error {
				if db.Dialect == dbutil.Postgres {
					if _, err := db.Exec(ctx, prunePlanSettings); err != nil {
						return err
					}
				}
				rows, err := db.Query(ctx, explain+stmt.query, stmt.args...)
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
					var line string
					if db.Dialect == dbutil.Postgres {
						err = rows.Scan(&line)
					} else {
						var id, parent, unused int
						err = rows.Scan(&id, &parent, &unused, &line)
					}
					if err != nil {
						return err
					}
					plan = append(plan, line)
				}
				return rows.Err()
			})
			if err != nil {
				t.Fatalf("%s: %v", stmt.name, err)
			}
			if text := strings.Join(plan, "\n"); !strings.Contains(text, byKey) {
				t.Errorf("%s does not read its batch by key:\n%s", stmt.name, text)
			}
		}
	})
}
