package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/internal/dbtest"
)

// whatsmeowTablesSQL are whatsmeow's LID map and its token table with the
// sender timestamp column (whatsmeow 33cfac51), or without it (2025-12).
const (
	whatsmeowLIDMapSQL       = `CREATE TABLE whatsmeow_lid_map (lid TEXT PRIMARY KEY, pn TEXT UNIQUE NOT NULL)`
	whatsmeowTokensSenderSQL = `CREATE TABLE whatsmeow_privacy_tokens (our_jid TEXT, their_jid TEXT, token bytea NOT NULL,
		timestamp BIGINT NOT NULL, sender_timestamp BIGINT, PRIMARY KEY (our_jid, their_jid))`
	whatsmeowTokens202512SQL = `CREATE TABLE whatsmeow_privacy_tokens (our_jid TEXT, their_jid TEXT, token bytea NOT NULL,
		timestamp BIGINT NOT NULL, PRIMARY KEY (our_jid, their_jid))`
)

// One statement sets the sender timestamp on whatsmeow's rows of the
// contacts, and only there: on the row under the contact's key or its twin
// by the LID map (either way round), never on a row without a token, never
// older than what the row holds, never on another account's row, and it
// makes no row. PostgreSQL, and SQLite with the contacts as JSON and as a
// VALUES list, do the same. whatsmeow 2025-12's table, without the column,
// is an error that says so.
func TestSetWhatsmeowSenderTimestamps(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(testing.TB) *dbutil.Database
		mode int32
	}{
		{"postgres", dbtest.Postgres, sqliteRowsUnknown},
		{"sqlite json", dbtest.SQLite, sqliteRowsJSON},
		{"sqlite values", dbtest.SQLite, sqliteRowsValues},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db := tc.open(t)
			c := New(db)
			if err := c.Upgrade(ctx); err != nil {
				t.Fatal(err)
			}
			c.sqliteRows.Store(tc.mode)
			our, other := types.NewADJID("1000", 0, 2), types.NewADJID("2000", 0, 2)
			exec := func(query string, args ...any) {
				t.Helper()
				if _, err := db.Exec(ctx, query, args...); err != nil {
					t.Fatal(err)
				}
			}
			exec(whatsmeowLIDMapSQL)
			exec(whatsmeowTokensSenderSQL)
			exec(`INSERT INTO whatsmeow_lid_map (lid, pn) VALUES ('9004', '1004'), ('9005', '1005')`)
			row := func(account types.JID, contact string, token string, sender any) {
				exec(`INSERT INTO whatsmeow_privacy_tokens (our_jid, their_jid, token, timestamp, sender_timestamp) VALUES ($1, $2, $3, 100, $4)`,
					account.String(), contact, []byte(token), sender)
			}
			row(our, "9001@lid", "alice", nil)           // no sender timestamp yet
			row(our, "9002@lid", "bob", 900)             // a newer one
			row(our, "9007@lid", "gina", 500)            // the same one
			row(our, "1004@s.whatsapp.net", "dave", 100) // under the twin of the LID asked for
			row(our, "9005@lid", "erin", nil)            // under the twin of the number asked for
			row(our, "9006@lid", "", nil)                // no token
			row(other, "9001@lid", "other-alice", nil)   // another account
			row(our, "9008@lid", "not asked about", nil) // another contact
			lid := func(user string) types.JID { return types.NewJID(user, types.HiddenUserServer) }
			contacts := []types.JID{lid("9001"), lid("9002"), lid("9003"), lid("9004"), types.NewJID("1005", types.DefaultUserServer),
				lid("9006"), lid("9007")}

			set, err := c.ForAccount(our).SetWhatsmeowSenderTimestamps(ctx, 500, contacts...)
			if err != nil || set != 3 {
				t.Fatalf("set %d rows, %v; want alice's, dave's and erin's", set, err)
			}
			for contact, want := range map[string]int64{
				"9001@lid": 500, "9002@lid": 900, "9007@lid": 500, "1004@s.whatsapp.net": 500, "9005@lid": 500, "9006@lid": -1, "9008@lid": -1,
			} {
				var got sql.NullInt64
				if err := db.QueryRow(ctx, `SELECT sender_timestamp FROM whatsmeow_privacy_tokens WHERE our_jid=$1 AND their_jid=$2`,
					our.String(), contact).Scan(&got); err != nil {
					t.Fatalf("%s: %v", contact, err)
				}
				if (want == -1 && got.Valid) || (want != -1 && got.Int64 != want) {
					t.Errorf("%s: sender timestamp %v, want %d (-1: none)", contact, got, want)
				}
			}
			var otherSender sql.NullInt64
			if err := db.QueryRow(ctx, `SELECT sender_timestamp FROM whatsmeow_privacy_tokens WHERE our_jid=$1`, other.String()).Scan(&otherSender); err != nil || otherSender.Valid {
				t.Errorf("another account's row: %v, %v", otherSender, err)
			}
			var rows int
			if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM whatsmeow_privacy_tokens`).Scan(&rows); err != nil || rows != 8 {
				t.Errorf("%d rows, %v; want the 8 there were", rows, err)
			}
		})
	}
	t.Run("whatsmeow 2025-12", func(t *testing.T) {
		dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
			ctx := context.Background()
			c := New(db)
			if err := c.Upgrade(ctx); err != nil {
				t.Fatal(err)
			}
			for _, query := range []string{whatsmeowLIDMapSQL, whatsmeowTokens202512SQL} {
				if _, err := db.Exec(ctx, query); err != nil {
					t.Fatal(err)
				}
			}
			_, err := c.ForAccount(types.NewADJID("1000", 0, 2)).SetWhatsmeowSenderTimestamps(ctx, 500, types.NewJID("9001", types.HiddenUserServer))
			if !errors.Is(err, ErrNoWhatsmeowSenderColumn) {
				t.Fatalf("whatsmeow 2025-12's table: %v, want ErrNoWhatsmeowSenderColumn", err)
			}
		})
	})
}
