package sqlstore_test

import (
	"context"
	"fmt"
	"testing"

	"go.mau.fi/util/dbutil"

	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/sqlstore"
)

const insertWhatsmeowTokenQuery = `INSERT INTO whatsmeow_privacy_tokens (our_jid, their_jid, token, timestamp) VALUES ($1, $2, $3, $4)`

// whatsmeowTables creates whatsmeow's own tables (2025-12's schema) in db;
// withSenderColumn adds the newer whatsmeow's sender_timestamp column.
func whatsmeowTables(t *testing.T, db *dbutil.Database, withSenderColumn bool) {
	t.Helper()
	ctx := context.Background()
	dbtest.WhatsmeowContainer(t, db)
	if withSenderColumn {
		// Newer whatsmeow versions create the column themselves.
		exists, err := db.ColumnExists(ctx, "whatsmeow_privacy_tokens", "sender_timestamp")
		if err != nil {
			t.Fatal(err)
		}
		if !exists {
			if _, err := db.Exec(ctx, `ALTER TABLE whatsmeow_privacy_tokens ADD COLUMN sender_timestamp BIGINT`); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestImportWhatsmeowTokens(t *testing.T) {
	for _, withSender := range []bool{false, true} {
		t.Run(fmt.Sprintf("sender_timestamp column %v", withSender), func(t *testing.T) {
			dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
				ctx := context.Background()
				whatsmeowTables(t, db, withSender)
				s := newContainer(t, db).ForAccount(ourJID)
				// What the plugin already holds: a newer token from alice, an
				// older one from bob with our sender timestamp.
				put(t, s, sqlstore.TokenWrite{Contact: aliceLID, Token: []byte("alice-plugin"), TokenTS: 5000},
					sqlstore.TokenWrite{Contact: bobPN, Token: []byte("bob-plugin"), TokenTS: 1500})
				if err := s.SetSenderTimestamps(ctx, 900, bobPN); err != nil {
					t.Fatal(err)
				}
				// whatsmeow's rows: more than two batches of strangers,
				// alice and bob, an expired one, and another account's.
				const strangers = sqlstore.ImportBatchSize*2 + 123
				err := db.DoTxn(ctx, nil, func(ctx context.Context) error {
					for i := range strangers {
						if _, err := db.Exec(ctx, insertWhatsmeowTokenQuery, ourJID.String(), fmt.Sprintf("%015d@lid", i), []byte("t"), 2000+i); err != nil {
							return err
						}
					}
					for _, row := range []struct {
						account, contact, token string
						ts                      int64
					}{
						{ourJID.String(), aliceLID.String(), "alice-whatsmeow", 4000},
						{ourJID.String(), bobPN.String(), "bob-whatsmeow", 4000},
						{ourJID.String(), carolLID.String(), "carol-expired", 10},
						{otherJID.String(), alicePN.String(), "other-account", 4000},
					} {
						if _, err := db.Exec(ctx, insertWhatsmeowTokenQuery, row.account, row.contact, []byte(row.token), row.ts); err != nil {
							return err
						}
					}
					if withSender {
						_, err := db.Exec(ctx, `UPDATE whatsmeow_privacy_tokens SET sender_timestamp=1200 WHERE their_jid=$1`, bobPN.String())
						return err
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}

				if done, err := s.Imported(ctx); err != nil || done {
					t.Fatalf("before the import: imported=%v, %v", done, err)
				}
				batches := 0
				n, err := s.ImportWhatsmeowTokens(ctx, 1000, func() { batches++ })
				if err != nil {
					t.Fatal(err)
				}
				if n != strangers+2 || batches != 3 {
					t.Fatalf("merged %d rows in %d batches, want %d in 3", n, batches, strangers+2)
				}
				if done, err := s.Imported(ctx); err != nil || !done {
					t.Fatalf("after the import: imported=%v, %v", done, err)
				}
				assertEntry(t, get(t, s, aliceLID), sqlstore.Entry{Contact: aliceLID, Token: []byte("alice-plugin"), TokenTS: 5000})
				// The plugin's own token wins even against a newer one: all
				// it holds went through it first and was written through.
				wantBob := sqlstore.Entry{Contact: bobPN, Token: []byte("bob-plugin"), TokenTS: 1500, SenderTS: 900}
				if withSender {
					wantBob.SenderTS = 1200
				}
				assertEntry(t, get(t, s, bobPN), wantBob)
				if e := get(t, s, carolLID); e != nil {
					t.Fatalf("an expired token was imported: %+v", e)
				}
				if e := get(t, newContainer(t, db).ForAccount(otherJID), alicePN); e != nil {
					t.Fatalf("another account's row was imported: %+v", e)
				}
				contacts, err := s.Contacts(ctx)
				if err != nil || len(contacts) != strangers+2 {
					t.Fatalf("%d contacts after the import, want %d (%v)", len(contacts), strangers+2, err)
				}

				// Running it again changes nothing that matters.
				if _, err := s.ImportWhatsmeowTokens(ctx, 1000, nil); err != nil {
					t.Fatal(err)
				}
				assertEntry(t, get(t, s, bobPN), wantBob)
			})
		})
	}
}

func TestImportWithoutWhatsmeowTables(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		s := newContainer(t, db).ForAccount(ourJID)
		n, err := s.ImportWhatsmeowTokens(context.Background(), 0, nil)
		if err != nil || n != 0 {
			t.Fatalf("a database without whatsmeow's table: %d rows, %v", n, err)
		}
		if done, err := s.Imported(context.Background()); err != nil || !done {
			t.Fatalf("recorded as imported: %v, %v", done, err)
		}
	})
}

// BenchmarkImport100k imports 100,000 of whatsmeow's rows, the size the
// adoption issue names ("a few seconds").
func BenchmarkImport100k(b *testing.B) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		b.Run(dialect, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				b.StopTimer()
				var db *dbutil.Database
				if dialect == "sqlite" {
					db = dbtest.SQLite(b)
				} else {
					db = dbtest.Postgres(b)
				}
				dbtest.WhatsmeowContainer(b, db)
				c := sqlstore.New(db)
				if err := c.Upgrade(ctx); err != nil {
					b.Fatal(err)
				}
				err := db.DoTxn(ctx, nil, func(ctx context.Context) error {
					for i := range 100_000 {
						if _, err := db.Exec(ctx, insertWhatsmeowTokenQuery, ourJID.String(), fmt.Sprintf("%015d@lid", i), []byte("token"), 2000+i); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if n, err := c.ForAccount(ourJID).ImportWhatsmeowTokens(ctx, 0, nil); err != nil || n != 100_000 {
					b.Fatalf("imported %d: %v", n, err)
				}
			}
		})
	}
}
