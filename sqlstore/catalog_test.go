package sqlstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.mau.fi/util/dbutil"

	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/sqlstore"
)

// The catalog lookups give the known answers on both databases: a table and
// its columns are there, a missing table or column is not, nor is a dropped
// column (PostgreSQL keeps its row in pg_attribute) or a system column.
func TestCatalogLookups(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		if _, err := db.Exec(ctx, `CREATE TABLE catalog_probe (kept INTEGER, dropped INTEGER)`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `ALTER TABLE catalog_probe DROP COLUMN dropped`); err != nil {
			t.Fatal(err)
		}
		system := "rowid"
		if db.Dialect == dbutil.Postgres {
			system = "ctid"
		}
		for _, c := range []struct {
			table, column string
			want          bool
		}{
			{"catalog_probe", "", true},
			{"catalog_missing", "", false},
			{"catalog_probe", "kept", true},
			{"catalog_probe", "dropped", false},
			{"catalog_probe", "never", false},
			{"catalog_probe", system, false},
			{"catalog_missing", "kept", false},
		} {
			var got bool
			var err error
			if c.column == "" {
				got, err = sqlstore.TableVisible(ctx, db, c.table)
			} else {
				got, err = sqlstore.ColumnVisible(ctx, db, c.table, c.column)
			}
			if err != nil {
				t.Errorf("%s %q: %v", c.table, c.column, err)
			} else if got != c.want {
				t.Errorf("%s %q visible = %v, want %v", c.table, c.column, got, c.want)
			}
		}
		if db.Dialect == dbutil.Postgres {
			// A name to_regclass cannot parse is an error, and says which.
			_, err := sqlstore.TableVisible(ctx, db, "a.b.c.catalog_probe")
			if err == nil || !strings.Contains(err.Error(), "a.b.c.catalog_probe") {
				t.Errorf("unparseable name: err = %v, want one naming the table", err)
			}
		}
	})
}

// otherWhatsmeow is whatsmeow in a schema the test's role may read but that
// is not on its search_path (another bridge's, say): the newer token table
// with sender_timestamp, our device, and a LID mapping for alice.
var otherWhatsmeow = []string{
	`CREATE TABLE whatsmeow_privacy_tokens (our_jid TEXT, their_jid TEXT, token bytea NOT NULL, timestamp BIGINT NOT NULL,
		sender_timestamp BIGINT, PRIMARY KEY (our_jid, their_jid))`,
	`CREATE TABLE whatsmeow_device (jid TEXT PRIMARY KEY)`,
	`INSERT INTO whatsmeow_device (jid) VALUES ('` + ourJID.String() + `')`,
	`CREATE TABLE whatsmeow_lid_map (lid TEXT PRIMARY KEY, pn TEXT UNIQUE NOT NULL)`,
	`INSERT INTO whatsmeow_lid_map (lid, pn) VALUES ('` + aliceLID.User + `', '` + alicePN.User + `')`,
}

// On PostgreSQL the plugin answers for the schema its unqualified statements
// resolve to, not for any schema its role may read. dbutil's TableExists and
// ColumnExists, which the plugin asked before, search information_schema and
// see the other schema: the contrasts below check that each setup does
// reproduce that (and so that the plugin's answers are not right by chance).
func TestCatalogFollowsSearchPath(t *testing.T) {
	t.Run("no whatsmeow tables", func(t *testing.T) {
		ctx := context.Background()
		db := dbtest.Postgres(t)
		other := dbtest.ReadableSchema(t, db, otherWhatsmeow...)
		c := newContainer(t, db)
		s := c.ForAccount(ourJID)
		assertCanRead(t, db, other)

		for _, table := range []string{sqlstore.WhatsmeowTokensTable, "whatsmeow_device", sqlstore.WhatsmeowLIDMapTable} {
			if visible, err := sqlstore.TableVisible(ctx, db, table); err != nil || visible {
				t.Errorf("TableVisible(%s) = %v, %v; want false", table, visible, err)
			}
			if exists, err := db.TableExists(ctx, table); err != nil || !exists {
				t.Errorf("contrast: dbutil's TableExists(%s) = %v, %v; want the wrong answer true", table, exists, err)
			}
		}
		if visible, err := sqlstore.ColumnVisible(ctx, db, sqlstore.WhatsmeowTokensTable, "sender_timestamp"); err != nil || visible {
			t.Errorf("ColumnVisible(sender_timestamp) = %v, %v; want false", visible, err)
		}
		if sees, err := s.SeesWhatsmeow(ctx); err != nil || sees {
			t.Errorf("SeesWhatsmeow = %v, %v; want false", sees, err)
		}
		if _, err := s.ImportWhatsmeowTokens(ctx, 0, importInto(t, s, new(int))); !errors.Is(err, sqlstore.ErrWhatsmeowNotVisible) {
			t.Errorf("import: %v, want ErrWhatsmeowNotVisible", err)
		}
		if lid, pn, err := c.ResolveStored(ctx, alicePN); err != nil || !lid.IsEmpty() || pn != alicePN {
			t.Errorf("ResolveStored(%s) = %s, %s, %v; want no LID from the other schema", alicePN, lid, pn, err)
		}
	})

	t.Run("2025-12 table", func(t *testing.T) {
		ctx := context.Background()
		db := dbtest.Postgres(t)
		other := dbtest.ReadableSchema(t, db, otherWhatsmeow...)
		whatsmeowTables(t, db, false)
		// Newer whatsmeow versions create the column themselves: the
		// 2025-12 shape is then their table without it.
		if _, err := db.Exec(ctx, `ALTER TABLE whatsmeow_privacy_tokens DROP COLUMN IF EXISTS sender_timestamp`); err != nil {
			t.Fatal(err)
		}
		s := newContainer(t, db).ForAccount(ourJID)
		assertCanRead(t, db, other)

		if visible, err := sqlstore.ColumnVisible(ctx, db, sqlstore.WhatsmeowTokensTable, "sender_timestamp"); err != nil || visible {
			t.Errorf("ColumnVisible(sender_timestamp) = %v, %v; want false", visible, err)
		}
		if exists, err := db.ColumnExists(ctx, sqlstore.WhatsmeowTokensTable, "sender_timestamp"); err != nil || !exists {
			t.Errorf("contrast: dbutil's ColumnExists(sender_timestamp) = %v, %v; want the wrong answer true", exists, err)
		}
		if sees, err := s.SeesWhatsmeow(ctx); err != nil || !sees {
			t.Fatalf("SeesWhatsmeow = %v, %v; want true", sees, err)
		}

		// The import and the write-through use the shape of the table in
		// the connection's own schema: with the other one's, each of their
		// statements would name a column this table does not have.
		if _, err := db.Exec(ctx, insertWhatsmeowTokenQuery, ourJID.String(), aliceLID.String(), []byte("alice-whatsmeow"), 4000); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ImportWhatsmeowTokens(ctx, 1000, importInto(t, s, new(int))); err != nil {
			t.Fatalf("import: %v", err)
		}
		assertEntry(t, get(t, s, aliceLID), sqlstore.Entry{Contact: aliceLID, Token: []byte("alice-whatsmeow"), TokenTS: 4000})
		if err := s.PutWhatsmeowTokens(ctx, sqlstore.TokenWrite{Contact: bobPN, Token: []byte("bob"), TokenTS: 5000}); err != nil {
			t.Fatalf("write-through: %v", err)
		}
		var token []byte
		if err := db.QueryRow(ctx, `SELECT token FROM whatsmeow_privacy_tokens WHERE our_jid=$1 AND their_jid=$2`, ourJID.String(), bobPN.String()).Scan(&token); err != nil || string(token) != "bob" {
			t.Errorf("bob's row in our whatsmeow table: %q, %v", token, err)
		}
	})
}

// assertCanRead checks the setup: db's role reads the other schema's table
// when it names the schema, so only the search_path keeps it out.
func assertCanRead(t *testing.T, db *dbutil.Database, schema string) {
	t.Helper()
	var rows int
	if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM "`+schema+`".whatsmeow_privacy_tokens`).Scan(&rows); err != nil {
		t.Fatalf("the test's role cannot read schema %s: %v", schema, err)
	}
}
