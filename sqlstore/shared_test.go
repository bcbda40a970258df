package sqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/store"
	wsqlstore "go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/sqlstore"
)

// readThrough reads the probe contact through whatsmeow's own token store.
func readThrough(store *wsqlstore.SQLStore) func(ctx context.Context, contact types.JID) ([]byte, error) {
	return func(ctx context.Context, contact types.JID) ([]byte, error) {
		token, err := store.GetPrivacyToken(ctx, contact)
		if token == nil {
			return nil, err
		}
		return token.Token, err
	}
}

// whatsmeow's store on a child of the plugin's database (as mautrix bridges
// build it) joins the plugin's transactions; one on a pool of its own, on
// the very same database, does not. The probe leaves nothing behind.
func TestSharesTransactions(t *testing.T) {
	for _, driver := range []string{dbtest.DriverSQLite, dbtest.DriverPostgres} {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			var uri string
			if driver == dbtest.DriverSQLite {
				uri = dbtest.SQLiteURI(t)
			} else {
				uri = dbtest.PostgresURI(t)
			}
			db := dbtest.Open(t, driver, uri)
			s := newContainer(t, db).ForAccount(ourJID)
			child := wsqlstore.NewSQLStore(dbtest.WhatsmeowContainer(t, db), ourJID)
			if shared, err := s.SharesTransactions(ctx, readThrough(child)); err != nil || !shared {
				t.Fatalf("whatsmeow on a child of the plugin's database: shared=%v, %v; want true", shared, err)
			}
			apart := wsqlstore.NewSQLStore(wsqlstore.NewWithWrappedDB(dbtest.Open(t, driver, uri), nil), ourJID)
			if shared, err := s.SharesTransactions(ctx, readThrough(apart)); err != nil || shared {
				t.Fatalf("whatsmeow on a pool of its own: shared=%v, %v; want false", shared, err)
			}
			// Inside a transaction already running (whatsmeow's, say) the
			// probe's rollback would not be its own: it refuses, and the
			// outer commit keeps nothing of it.
			err := db.DoTxn(ctx, nil, func(ctx context.Context) error {
				if !s.InTransaction(ctx) {
					t.Error("InTransaction is false inside DoTxn")
				}
				shared, err := s.SharesTransactions(ctx, readThrough(child))
				if shared || !errors.Is(err, sqlstore.ErrProbeInTransaction) {
					t.Errorf("inside a transaction: shared=%v, %v; want ErrProbeInTransaction", shared, err)
				}
				return nil
			})
			if err != nil || s.InTransaction(ctx) {
				t.Fatalf("outer transaction: %v; InTransaction outside it: %v", err, s.InTransaction(ctx))
			}
			var rows int
			if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM whatsmeow_privacy_tokens`).Scan(&rows); err != nil || rows != 0 {
				t.Fatalf("whatsmeow's table holds %d rows after the probes (%v); want 0", rows, err)
			}
		})
	}
}

// Without whatsmeow's table in the plugin's database the probe says no.
func TestSharesTransactionsWithoutWhatsmeowTables(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		s := newContainer(t, db).ForAccount(ourJID)
		shared, err := s.SharesTransactions(context.Background(), func(context.Context, types.JID) ([]byte, error) {
			t.Fatal("the probe read through the other store without a probe row")
			return nil, nil
		})
		if shared || err == nil {
			t.Fatalf("shared=%v, err=%v; want false and the failed probe write", shared, err)
		}
	})
}

// GetByLID reads the rows under the LID and under the phone number
// whatsmeow's LID map pairs with it, and names that number, in one statement.
func TestGetByLID(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		whatsmeow := dbtest.WhatsmeowContainer(t, db)
		s := newContainer(t, db).ForAccount(ourJID)
		other := newContainer(t, db).ForAccount(otherJID)

		// Nothing stored, no mapping.
		if pn, rows, err := s.GetByLID(ctx, aliceLID); err != nil || !pn.IsEmpty() || len(rows) != 0 {
			t.Fatalf("empty: %v, %v, %v", pn, rows, err)
		}
		// A mapping, nothing stored: the number comes back anyway.
		if err := whatsmeow.LIDMap.PutLIDMapping(ctx, aliceLID, alicePN); err != nil {
			t.Fatal(err)
		}
		if pn, rows, err := s.GetByLID(ctx, aliceLID); err != nil || pn != alicePN || len(rows) != 0 {
			t.Fatalf("mapping only: %v, %v, %v; want %v and no rows", pn, rows, err, alicePN)
		}
		// Rows under both keys, and another account's, which never shows.
		put(t, s, sqlstore.TokenWrite{Contact: aliceLID, Token: []byte("lid-token"), TokenTS: 2000},
			sqlstore.TokenWrite{Contact: alicePN, Token: []byte("pn-token"), TokenTS: 1000})
		put(t, other, sqlstore.TokenWrite{Contact: aliceLID, Token: []byte("other-account"), TokenTS: 3000})
		pn, rows, err := s.GetByLID(ctx, types.JID{User: aliceLID.User, Device: 4, Server: types.HiddenUserServer})
		if err != nil || pn != alicePN || len(rows) != 2 {
			t.Fatalf("both rows: %v, %d rows, %v; want %v and 2 rows", pn, len(rows), err, alicePN)
		}
		for _, row := range rows {
			switch row.Contact {
			case aliceLID:
				assertEntry(t, row, sqlstore.Entry{Contact: aliceLID, Token: []byte("lid-token"), TokenTS: 2000})
			case alicePN:
				assertEntry(t, row, sqlstore.Entry{Contact: alicePN, Token: []byte("pn-token"), TokenTS: 1000})
			default:
				t.Fatalf("unexpected row %v", row.Contact)
			}
			if bytes.Equal(row.Token, []byte("other-account")) {
				t.Fatal("another account's row came back")
			}
		}
		// A contact with no mapping: only the LID row.
		put(t, s, sqlstore.TokenWrite{Contact: carolLID, Token: []byte("carol"), TokenTS: 1500})
		if pn, rows, err := s.GetByLID(ctx, carolLID); err != nil || !pn.IsEmpty() || len(rows) != 1 || rows[0].Contact != carolLID {
			t.Fatalf("unmapped: %v, %v, %v", pn, rows, err)
		}
	})
}

// Tokens of any bytes, and contacts whose keys need escaping in an array
// literal, go in and come back as they were, in one batch.
func TestPutTokensAnyBytes(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		s := newContainer(t, db).ForAccount(ourJID)
		odd := types.NewJID(`odd"user\name`, types.HiddenUserServer)
		binary := []byte{0x00, 0xff, '"', '\\', '{', '}', ',', 0x80}
		changed := put(t, s, sqlstore.TokenWrite{Contact: odd, Token: binary, TokenTS: 1000},
			sqlstore.TokenWrite{Contact: aliceLID, Token: []byte("plain"), TokenTS: 1000})
		assertChanged(t, changed, true, true)
		assertEntry(t, get(t, s, odd), sqlstore.Entry{Contact: odd, Token: binary, TokenTS: 1000})
		if err := s.PutSenderTimestamps(context.Background(), sqlstore.SenderWrite{Contact: odd, TS: 900}); err != nil {
			t.Fatal(err)
		}
		assertEntry(t, get(t, s, odd), sqlstore.Entry{Contact: odd, Token: binary, TokenTS: 1000, SenderTS: 900})
	})
}

// The plugin's write into whatsmeow's token table does what whatsmeow's own
// store does with the same writes, on whichever whatsmeow the suite runs
// (2025-12's table, or the newer one with sender_timestamp): the same
// sequence through each, for two accounts, leaves the same rows.
func TestPutWhatsmeowTokensMatchesWhatsmeow(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		whatsmeow := wsqlstore.NewSQLStore(dbtest.WhatsmeowContainer(t, db), otherJID)
		ours := newContainer(t, db).ForAccount(ourJID)
		hasSender, err := db.ColumnExists(ctx, "whatsmeow_privacy_tokens", "sender_timestamp")
		if err != nil {
			t.Fatal(err)
		}
		odd := types.NewJID("7", types.HiddenUserServer)
		steps := [][]sqlstore.TokenWrite{
			{{Contact: aliceLID, Token: []byte("a1"), TokenTS: 1000}, {Contact: bobPN, Token: []byte{0, 0xff}, TokenTS: 1000}},
			{{Contact: aliceLID, Token: []byte("a2"), TokenTS: 2000}},
			{{Contact: aliceLID, Token: []byte("a-older"), TokenTS: 1500}}, // a history mend moves back
			{{Contact: bobPN, Token: []byte{0, 0xff}, TokenTS: 1000}, {Contact: odd, Token: []byte("o"), TokenTS: 5}},
		}
		for i, step := range steps {
			if i == 1 && hasSender {
				// The newer whatsmeow's own issuance recorded a sender
				// timestamp on alice's row: a token write keeps it.
				for _, account := range []types.JID{ourJID, otherJID} {
					if _, err := db.Exec(ctx, `UPDATE whatsmeow_privacy_tokens SET sender_timestamp=900 WHERE our_jid=$1 AND their_jid=$2`, account.String(), aliceLID.String()); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := ours.PutWhatsmeowTokens(ctx, step...); err != nil {
				t.Fatalf("step %d, the plugin's write: %v", i, err)
			}
			tokens := make([]store.PrivacyToken, len(step))
			for j, w := range step {
				tokens[j] = store.PrivacyToken{User: w.Contact, Token: w.Token, Timestamp: time.Unix(w.TokenTS, 0)}
			}
			if err := whatsmeow.PutPrivacyTokens(ctx, tokens...); err != nil {
				t.Fatalf("step %d, whatsmeow's write: %v", i, err)
			}
		}
		rows := func(account types.JID) string {
			sender := "0"
			if hasSender {
				sender = "COALESCE(sender_timestamp, -1)"
			}
			res, err := db.Query(ctx, `SELECT their_jid, token, timestamp, `+sender+` FROM whatsmeow_privacy_tokens WHERE our_jid=$1 ORDER BY their_jid`, account.String())
			if err != nil {
				t.Fatal(err)
			}
			defer res.Close()
			var out []string
			for res.Next() {
				var contact string
				var token []byte
				var ts, senderTS int64
				if err := res.Scan(&contact, &token, &ts, &senderTS); err != nil {
					t.Fatal(err)
				}
				out = append(out, fmt.Sprintf("%s %x %d %d", contact, token, ts, senderTS))
			}
			return strings.Join(out, "; ")
		}
		if got, want := rows(ourJID), rows(otherJID); got != want || want == "" {
			t.Fatalf("the plugin's writes left\n  %s\nwhatsmeow's own left\n  %s", got, want)
		}
	})
}

// A token write that carries our sender timestamp too: each part follows
// its own rule (the token only if newer, the sender timestamp only
// forward), in one statement, and the token part reports whether it
// applied.
func TestPutTokensWithSender(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		s := newContainer(t, db).ForAccount(ourJID)
		write := func(token string, ts, sender int64) sqlstore.TokenWrite {
			return sqlstore.TokenWrite{Contact: aliceLID, Token: []byte(token), TokenTS: ts, SenderTS: sender}
		}
		want := func(token string, ts, sender int64) sqlstore.Entry {
			return sqlstore.Entry{Contact: aliceLID, Token: []byte(token), TokenTS: ts, SenderTS: sender}
		}
		assertChanged(t, put(t, s, write("t1", 1000, 900)), true)
		assertEntry(t, get(t, s, aliceLID), want("t1", 1000, 900))
		// An older token with a newer sender timestamp: only the latter.
		assertChanged(t, put(t, s, write("t0", 500, 950)), false)
		assertEntry(t, get(t, s, aliceLID), want("t1", 1000, 950))
		// A newer token with an older sender timestamp: only the former.
		assertChanged(t, put(t, s, write("t2", 2000, 100)), true)
		assertEntry(t, get(t, s, aliceLID), want("t2", 2000, 950))
		// The same again changes nothing.
		assertChanged(t, put(t, s, write("t2", 2000, 950)), false)
		// Our sender timestamp as the token's timestamp for the same bytes
		// (whatsmeow 2025-12's history write) is still refused.
		assertChanged(t, put(t, s, write("t2", 950, 0), sqlstore.TokenWrite{Contact: bobPN, Token: []byte("b"), TokenTS: 10, SenderTS: 20}), false, true)
		assertEntry(t, get(t, s, aliceLID), want("t2", 2000, 950))
		assertEntry(t, get(t, s, bobPN), sqlstore.Entry{Contact: bobPN, Token: []byte("b"), TokenTS: 10, SenderTS: 20})
		// Several writes for one contact in a batch: the newest token, the
		// newest sender timestamp.
		assertChanged(t, put(t, s, write("t3", 3000, 960), write("t4", 4000, 0), write("t-old", 10, 990)), false, true, false)
		assertEntry(t, get(t, s, aliceLID), want("t4", 4000, 990))
	})
}

// LIDsForPNs answers as whatsmeow's own batch lookup does, for more
// numbers than one statement takes, without whatsmeow's cache: numbers
// with a LID map to it, the others are missing, and a LID asked for is
// ignored.
func TestLIDsForPNs(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		whatsmeow := dbtest.WhatsmeowContainer(t, db)
		s := newContainer(t, db).ForAccount(ourJID)
		const mapped = 2500
		var values []string
		var pns []types.JID
		for i := range mapped + 10 {
			pn := types.NewJID(fmt.Sprint(4400000+i), types.DefaultUserServer)
			pns = append(pns, pn)
			if i < mapped {
				values = append(values, fmt.Sprintf("('%d', '%s')", 7700000+i, pn.User))
			}
		}
		if _, err := db.Exec(ctx, "INSERT INTO whatsmeow_lid_map (lid, pn) VALUES "+strings.Join(values, ", ")); err != nil {
			t.Fatal(err)
		}
		got, err := s.LIDsForPNs(ctx, append(pns, aliceLID), nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := whatsmeow.LIDMap.GetManyLIDsForPNs(ctx, pns)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != mapped || !maps.Equal(got, want) {
			t.Fatalf("%d LIDs, whatsmeow's lookup %d; want %d and the same answers", len(got), len(want), mapped)
		}
		if got[pns[0]] != types.NewJID("7700000", types.HiddenUserServer) {
			t.Errorf("first number maps to %v", got[pns[0]])
		}
	})
}
