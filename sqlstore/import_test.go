package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"testing"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/sqlstore"
)

const insertWhatsmeowTokenQuery = `INSERT INTO whatsmeow_privacy_tokens (our_jid, their_jid, token, timestamp) VALUES ($1, $2, $3, $4)`

// whatsmeowTables creates whatsmeow's own tables (2025-12's schema) in db,
// with our device in them as whatsmeow's store would have it;
// withSenderColumn adds the newer whatsmeow's sender_timestamp column.
func whatsmeowTables(t testing.TB, db *dbutil.Database, withSenderColumn bool) {
	t.Helper()
	ctx := context.Background()
	container := dbtest.WhatsmeowContainer(t, db)
	device := container.NewDevice()
	device.ID = &ourJID
	device.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte{1}, AccountSignature: make([]byte, 64), AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64)}
	if err := container.PutDevice(ctx, device); err != nil {
		t.Fatal(err)
	}
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

// importInto is the batch writer a test hands ImportWhatsmeowTokens: it
// copies each batch whole, and counts the batches.
func importInto(t testing.TB, s *sqlstore.Store, batches *int) func(ctx context.Context, batch sqlstore.ImportBatch) error {
	return func(ctx context.Context, batch sqlstore.ImportBatch) error {
		*batches++
		return batch.Copy(ctx, sqlstore.TokenChecks{LatestTS: clockUnix + 86400, MaxSize: 1024})
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
				// older one from bob with our sender timestamp, dave's under
				// his LID where whatsmeow filed it under his phone number,
				// and erin's token, which whatsmeow holds with a later
				// timestamp (its history-sync misfiling).
				put(t, s, sqlstore.TokenWrite{Contact: aliceLID, Token: []byte("alice-plugin"), TokenTS: 5000},
					sqlstore.TokenWrite{Contact: bobPN, Token: []byte("bob-plugin"), TokenTS: 1500},
					sqlstore.TokenWrite{Contact: daveLID, Token: []byte("dave-plugin"), TokenTS: 3500},
					sqlstore.TokenWrite{Contact: erinLID, Token: []byte("erin"), TokenTS: 3000})
				if err := s.SetSenderTimestamps(ctx, 900, bobPN); err != nil {
					t.Fatal(err)
				}
				// whatsmeow's rows: more than two batches of strangers,
				// alice, bob, dave, erin, an expired one, and another
				// account's.
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
						{ourJID.String(), davePN.String(), "dave-whatsmeow", 3000},
						{ourJID.String(), erinLID.String(), "erin", 4500},
						{ourJID.String(), carolLID.String(), "carol-expired", 10},
						{otherJID.String(), alicePN.String(), "other-account", 4000},
					} {
						if _, err := db.Exec(ctx, insertWhatsmeowTokenQuery, row.account, row.contact, []byte(row.token), row.ts); err != nil {
							return err
						}
					}
					if _, err := db.Exec(ctx, `INSERT INTO whatsmeow_lid_map (lid, pn) VALUES ($1, $2)`, daveLID.User, davePN.User); err != nil {
						return err
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
				result, err := s.ImportWhatsmeowTokens(ctx, 1000, importInto(t, s, &batches))
				if err != nil {
					t.Fatal(err)
				}
				// The strangers and bob: alice's, dave's and erin's rows hold
				// nothing the plugin lacks.
				if result.Rows != strangers+1 || result.Batches != 3 || batches != 3 {
					t.Fatalf("handed over %d rows in %d batches (%d written), want %d in 3", result.Rows, result.Batches, batches, strangers+1)
				}
				if done, err := s.Imported(ctx); err != nil || !done {
					t.Fatalf("after the import: imported=%v, %v", done, err)
				}
				assertEntry(t, get(t, s, aliceLID), sqlstore.Entry{Contact: aliceLID, Token: []byte("alice-plugin"), TokenTS: 5000})
				// A newer token whatsmeow stored alone wins.
				wantBob := sqlstore.Entry{Contact: bobPN, Token: []byte("bob-whatsmeow"), TokenTS: 4000, SenderTS: 900}
				if withSender {
					wantBob.SenderTS = 1200
				}
				assertEntry(t, get(t, s, bobPN), wantBob)
				if e := get(t, s, davePN); e != nil {
					t.Fatalf("dave's older row under his number was imported beside his LID's: %+v", e)
				}
				assertEntry(t, get(t, s, erinLID), sqlstore.Entry{Contact: erinLID, Token: []byte("erin"), TokenTS: 3000})
				if e := get(t, s, carolLID); e != nil {
					t.Fatalf("an expired token was imported: %+v", e)
				}
				if e := get(t, newContainer(t, db).ForAccount(otherJID), alicePN); e != nil {
					t.Fatalf("another account's row was imported: %+v", e)
				}

				// The next pass finds nothing: what the plugin holds now is
				// whatsmeow's or newer. Then whatsmeow alone stores a newer
				// token from dave under his number: the pass after takes it.
				batches = 0
				if result, err = s.ImportWhatsmeowTokens(ctx, 1000, importInto(t, s, &batches)); err != nil || result.Rows != 0 || batches != 0 {
					t.Fatalf("a second pass handed over %d rows (%v), want none", result.Rows, err)
				}
				if _, err := db.Exec(ctx, `UPDATE whatsmeow_privacy_tokens SET token=$1, timestamp=3600 WHERE our_jid=$2 AND their_jid=$3`,
					[]byte("dave-newer"), ourJID.String(), davePN.String()); err != nil {
					t.Fatal(err)
				}
				if result, err = s.ImportWhatsmeowTokens(ctx, 1000, importInto(t, s, &batches)); err != nil || result.Rows != 1 {
					t.Fatalf("after whatsmeow stored a newer token alone: %d rows (%v), want 1", result.Rows, err)
				}
				assertEntry(t, get(t, s, davePN), sqlstore.Entry{Contact: davePN, Token: []byte("dave-newer"), TokenTS: 3600})
			})
		})
	}
}

// TestImportWithoutWhatsmeowTables: the plugin's tables in a database of
// their own. The import must say it could not see whatsmeow's table, and
// record nothing: recording it done would end the reads of whatsmeow's own
// store, the only place its tokens are reachable.
func TestImportWithoutWhatsmeowTables(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := newContainer(t, db).ForAccount(ourJID)
		write := func(context.Context, sqlstore.ImportBatch) error {
			t.Fatal("nothing to hand over")
			return nil
		}
		check := func(when string) {
			t.Helper()
			_, err := s.ImportWhatsmeowTokens(ctx, 0, write)
			if !errors.Is(err, sqlstore.ErrWhatsmeowNotVisible) {
				t.Fatalf("%s: %v, want ErrWhatsmeowNotVisible", when, err)
			}
			if done, err := s.Imported(ctx); err != nil || done {
				t.Fatalf("%s: recorded as imported (%v, %v)", when, done, err)
			}
		}
		check("no whatsmeow table at all")
		// whatsmeow's tables, but not our device: another bridge's schema,
		// or leftovers, not the store our client runs on.
		dbtest.WhatsmeowContainer(t, db)
		check("whatsmeow's tables without our device")
	})
}

// TestImportBatchPlan: each batch of the import reads one key range bounded
// on both sides, on both databases. With only a lower bound, SQLite read to
// the end of the account on every batch (a quadratic import: 36 s for a
// million rows), holding its write lock.
func TestImportBatchPlan(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		whatsmeowTables(t, db, true)
		s := newContainer(t, db).ForAccount(ourJID)
		// Rows in both tables, just written and not analysed, as after a
		// history sync or the first import: PostgreSQL's planner then has
		// no statistics to go on.
		fillUnanalysed(t, db, s, 20_000, true)
		plans, err := s.ImportPlans(ctx, fmt.Sprintf("%015d@lid", 5000), fmt.Sprintf("%015d@lid", 6999))
		if err != nil {
			t.Fatal(err)
		}
		for name, plan := range plans {
			t.Logf("%s:\n%s", name, plan)
		}
		// whatsmeow's rows in one key range, and the plugin's looked up by
		// key: nothing is read whole.
		var ranged, scan *regexp.Regexp
		if db.Dialect == dbutil.Postgres {
			ranged = regexp.MustCompile(`(Index (Only )?Scan using|Bitmap Index Scan on) whatsmeow_privacy_tokens_pkey[^\n]*\n\s+Index Cond: \(\(our_jid = '[^']+'::text\) AND \(their_jid > '[^']+'::text\) AND \(their_jid <= '[^']+'::text\)\)`)
			scan = regexp.MustCompile(`Seq Scan`)
		} else {
			ranged = regexp.MustCompile(`SEARCH w USING (INDEX \S+|PRIMARY KEY) \(our_jid=\? AND their_jid>\? AND their_jid<\?\)`)
			scan = regexp.MustCompile(`(^|\n)\s*SCAN `)
		}
		for _, name := range []string{"batch", "copy"} {
			if !ranged.MatchString(plans[name]) {
				t.Fatalf("the %s does not read one key range bounded on both sides:\n%s", name, plans[name])
			}
			if scan.MatchString(plans[name]) {
				t.Fatalf("the %s scans a table whole:\n%s", name, plans[name])
			}
		}
		// The bound reads at most a batch of keys from the index, no row.
		var bounded *regexp.Regexp
		if db.Dialect == dbutil.Postgres {
			bounded = regexp.MustCompile(`Limit[^\n]*\n\s+->\s+Index Only Scan using whatsmeow_privacy_tokens_pkey`)
		} else {
			bounded = regexp.MustCompile(`SEARCH whatsmeow_privacy_tokens USING COVERING INDEX \S+ \(our_jid=\? AND their_jid>\?\)`)
		}
		if !bounded.MatchString(plans["bound"]) {
			t.Fatalf("the bound of a batch is not read from the index alone:\n%s", plans["bound"])
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
				whatsmeowTables(b, db, false)
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
				s := c.ForAccount(ourJID)
				var batches int
				if result, err := s.ImportWhatsmeowTokens(ctx, 0, importInto(b, s, &batches)); err != nil || result.Rows != 100_000 {
					b.Fatalf("imported %d: %v", result.Rows, err)
				}
			}
		})
	}
}

var (
	davePN  = types.NewJID("1004", types.DefaultUserServer)
	daveLID = types.NewJID("9004", types.HiddenUserServer)
	erinLID = types.NewJID("9005", types.HiddenUserServer)
)

// fillUnanalysed writes rows contacts, 000000000000000@lid on, paired in
// whatsmeow's LID map with the numbers 1000000 on, into the plugin's table
// (token "t", token_ts 1000+i) and, with whatsmeow, into whatsmeow's too
// (timestamp 2000+i), and runs no ANALYZE: PostgreSQL's planner sees them
// as after a first import or a history sync, without statistics.
func fillUnanalysed(t *testing.T, db *dbutil.Database, s *sqlstore.Store, rows int, whatsmeow bool) {
	t.Helper()
	ctx := context.Background()
	writes := make([]sqlstore.TokenWrite, rows)
	err := db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for i := range rows {
			lid := fmt.Sprintf("%015d", i)
			if whatsmeow {
				if _, err := db.Exec(ctx, insertWhatsmeowTokenQuery, ourJID.String(), lid+"@lid", []byte("t"), 2000+i); err != nil {
					return err
				}
			}
			writes[i] = sqlstore.TokenWrite{Contact: types.NewJID(lid, types.HiddenUserServer), Token: []byte("t"), TokenTS: 1000 + int64(i)}
			if _, err := db.Exec(ctx, `INSERT INTO whatsmeow_lid_map (lid, pn) VALUES ($1, $2)`, lid, fmt.Sprint(1_000_000+i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, writes...)
}
