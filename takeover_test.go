package tctoken_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/hooks"
	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/wamock"
)

// The plugin takes over what whatsmeow's own store holds beyond its
// tables: on every bind, after an outage of its database, and with its
// tables in a database of their own.

// storedToken is the token a table holds for a contact of an account, or
// nil: the plugin's (tctoken_tokens) or whatsmeow's (whatsmeow_privacy_tokens).
func storedToken(t testing.TB, db *dbutil.Database, table string, account, contact types.JID) []byte {
	t.Helper()
	var token []byte
	err := db.QueryRow(context.Background(), "SELECT token FROM "+table+" WHERE our_jid=$1 AND their_jid=$2",
		account.String(), contact.ToNonAD().String()).Scan(&token)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	} else if err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	return token
}

// separateDB makes a new, empty database of db's dialect and returns how to
// open a pool on it: where a bridge keeps the plugin's tables apart from
// whatsmeow's.
func separateDB(t *testing.T, db *dbutil.Database) (open func() *dbutil.Database) {
	t.Helper()
	driver, uri := dbtest.DriverSQLite, ""
	if db.Dialect == dbutil.Postgres {
		driver, uri = dbtest.DriverPostgres, dbtest.PostgresURI(t)
	} else {
		uri = dbtest.SQLiteURI(t)
	}
	return func() *dbutil.Database { return dbtest.Open(t, driver, uri) }
}

// reenable enables the plugin again on the same client, after Close.
func (w *world) reenable() {
	w.t.Helper()
	w.enable()
	w.t.Cleanup(w.plugin.Close)
}

// waitNativeIssuanceSaved waits, on a whatsmeow that issues by itself after
// a first message (the newer one), until its goroutine has written the
// issuance back through Client.Store.PrivacyTokens, which it reads without
// a lock: Enable writes that field, and a test that enables again must not
// race it. The plugin copies the sender timestamp into whatsmeow's table
// on whatsmeow's read and again on its write-back.
func (w *world) waitNativeIssuanceSaved() {
	w.t.Helper()
	if w.plugin.NativeTokens() {
		w.waitLog(2, "Copied the sender timestamp into whatsmeow's table")
	}
}

// TestReEnableTakesNewerTokens: a token arrives with the plugin enabled;
// the plugin goes away; whatsmeow alone stores a newer token from the same
// contact; the plugin comes back. The next message carries the newer one,
// and the plugin's table holds it. Before, the import ran only on the
// first bind, so the plugin's older row won for good.
func TestReEnableTakesNewerTokens(t *testing.T) {
	for _, how := range []string{"Close and Enable again", "a run without the Enable line"} {
		t.Run(how, func(t *testing.T) {
			forEachDB(t, func(t *testing.T, db *dbutil.Database) {
				w := newWorld(t, db).connect()
				alice := w.srv.AddContact(wamock.ContactOptions{})
				w.waitLog(1, "Imported whatsmeow's privacy tokens")
				w.receiveToken(alice.LID(), "alice-older")
				if got := childBytes(w.rawSend(alice.LID()), "tctoken"); string(got) != "alice-older" {
					t.Fatalf("with the plugin: tctoken %q", got)
				}
				w.waitNativeIssuanceSaved()

				// The plugin goes away; whatsmeow alone stores a newer
				// token from alice.
				if how == "Close and Enable again" {
					w.plugin.Close()
				} else {
					w.reloadDevice()
					w.startPlain()
					w.connect()
				}
				w.clock.Advance(time.Hour)
				w.pushToken(alice.LID(), alice.LID(), []byte("alice-newer"), w.clock.Now())
				eventually(t, "whatsmeow alone stores the newer token", func() bool {
					return string(storedToken(t, db, "whatsmeow_privacy_tokens", *w.device.ID, alice.LID())) == "alice-newer"
				})

				// The plugin comes back: the next message carries the newer
				// token, whether or not the pass over whatsmeow's table has
				// reached alice yet.
				if how == "Close and Enable again" {
					w.reenable()
				} else {
					w.reloadDevice()
					w.start()
					w.connect()
				}
				if got := childBytes(w.rawSend(alice.LID()), "tctoken"); string(got) != "alice-newer" {
					t.Fatalf("after the plugin came back: tctoken %q, want alice-newer", got)
				}
				w.waitLog(2, "Imported whatsmeow's privacy tokens")
				if got := storedToken(t, db, "tctoken_tokens", *w.device.ID, alice.LID()); string(got) != "alice-newer" {
					t.Fatalf("the plugin's table holds %q, want alice-newer", got)
				}
				if got := childBytes(w.rawSend(alice.LID()), "tctoken"); string(got) != "alice-newer" {
					t.Fatalf("after the import: tctoken %q, want alice-newer", got)
				}
			})
		})
	}
}

// TestSeparatePluginDatabase: the plugin's tables in a database of their
// own (Enable allows it). The import cannot see whatsmeow's table; it must
// not record itself done, or reads would stop asking whatsmeow's store,
// where every existing token is. They stay reachable across restarts, and
// each one a read finds there is taken into the plugin's table.
func TestSeparatePluginDatabase(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		// A bridge that ran whatsmeow alone.
		w := newBareWorld(t, db, nil)
		w.startPlain()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		now := w.clock.Now()
		if err := w.cli.Store.PrivacyTokens.PutPrivacyTokens(w.ctx, storeToken(alice.LID(), "alice-before", now.Add(-time.Hour))); err != nil {
			t.Fatal(err)
		}
		w.secret([]byte("alice-before"))

		// The Enable line, with a database of the plugin's own.
		w.pluginDB = separateDB(t, db)()
		w.reloadDevice()
		w.start()
		w.connect()
		notVisible, imported := "whatsmeow's token table is not in the plugin's database", "Imported whatsmeow's privacy tokens"
		eventually(t, "the import's pass ends", func() bool { return w.logLines(notVisible)+w.logLines(imported) > 0 })
		for i := range 2 {
			if got := childBytes(w.rawSend(alice.LID()), "tctoken"); string(got) != "alice-before" {
				t.Fatalf("run %d: tctoken %q, want alice-before from whatsmeow's store", i, got)
			}
			// The read took the token into the plugin's table.
			eventually(t, "the plugin's table holds alice's token", func() bool {
				return string(storedToken(t, w.pluginDB, "tctoken_tokens", *w.device.ID, alice.LID())) == "alice-before"
			})
			if i == 0 {
				// Out of the plugin's table again: the next run still
				// reaches it through whatsmeow's store.
				if _, err := w.pluginDB.Exec(w.ctx, "DELETE FROM tctoken_tokens"); err != nil {
					t.Fatal(err)
				}
				w.restart()
			}
		}
		var recorded int
		if err := w.pluginDB.QueryRow(w.ctx, "SELECT COUNT(*) FROM tctoken_imports").Scan(&recorded); err != nil || recorded != 0 {
			t.Fatalf("an import that could not see whatsmeow's table was recorded (%d rows, %v)", recorded, err)
		}
		if n := w.logLines(imported); n != 0 {
			t.Fatal("an import that could not see whatsmeow's table said it imported")
		}
		if n := w.logLines(notVisible); n != 2 {
			t.Fatalf("%d lines say the import cannot see whatsmeow's table, want one per run", n)
		}
	})
}

// TestPluginDatabaseDown: the plugin's tables in a database of their own,
// and that database closed. A privacy_token notification still reaches
// whatsmeow's own store, and the next message carries the token, as with
// whatsmeow alone (before, the plugin's error stopped the write, and
// whatsmeow does not retry). Once the database is back and the plugin binds
// again, its table holds the token.
func TestPluginDatabaseDown(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		open := separateDB(t, db)
		w := newBareWorld(t, db, nil)
		w.pluginDB = open()
		w.start()
		w.connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		bob := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(alice.LID(), "alice-older")
		if got := childBytes(w.rawSend(alice.LID()), "tctoken"); string(got) != "alice-older" {
			t.Fatalf("before the outage: tctoken %q", got)
		}

		// The plugin's database goes away. alice (cached) and bob (never
		// read) send tokens.
		if err := w.pluginDB.RawDB.Close(); err != nil {
			t.Fatal(err)
		}
		w.clock.Advance(time.Hour)
		w.pushToken(alice.LID(), alice.LID(), []byte("alice-newer"), w.clock.Now())
		w.pushToken(bob.LID(), bob.LID(), []byte("bob-token"), w.clock.Now())
		for contact, want := range map[types.JID]string{alice.LID(): "alice-newer", bob.LID(): "bob-token"} {
			eventually(t, "whatsmeow's store holds "+want, func() bool {
				return string(storedToken(t, db, "whatsmeow_privacy_tokens", *w.device.ID, contact)) == want
			})
			if got := childBytes(w.rawSend(contact), "tctoken"); string(got) != want {
				t.Fatalf("with the plugin's database down: tctoken %q, want %s", got, want)
			}
		}

		// The database is back, and the plugin binds again (a restart).
		w.pluginDB = open()
		w.restart()
		for contact, want := range map[types.JID]string{alice.LID(): "alice-newer", bob.LID(): "bob-token"} {
			if got := childBytes(w.rawSend(contact), "tctoken"); string(got) != want {
				t.Fatalf("after the outage: tctoken %q, want %s", got, want)
			}
			eventually(t, "the plugin's table holds "+want, func() bool {
				return string(storedToken(t, w.pluginDB, "tctoken_tokens", *w.device.ID, contact)) == want
			})
		}
	})
}

// TestImportChecksTokens: the import applies the checks every other path
// makes. whatsmeow's table holds a token dated a month ahead, one over the
// size limit, and one filed under a group; none reaches the plugin's table,
// one line says what was skipped, and the real token that arrives next wins.
// Before, the future-dated row was imported and won every comparison
// forever.
func TestImportChecksTokens(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newBareWorld(t, db, nil)
		w.startPlain()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		bob := w.srv.AddContact(wamock.ContactOptions{})
		group := types.NewJID("120363000000000001", types.GroupServer)
		now := w.clock.Now()
		oversized := bytes.Repeat([]byte("b"), hooks.MaxTokenSize+1)
		err := w.cli.Store.PrivacyTokens.PutPrivacyTokens(w.ctx,
			storeToken(alice.LID(), "alice-future", now.Add(30*24*time.Hour)),
			storeToken(bob.LID(), string(oversized), now.Add(-time.Hour)),
			storeToken(group, "group-token", now.Add(-time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		w.secret([]byte("alice-future"))
		w.secret([]byte("group-token"))

		w.reloadDevice()
		w.start()
		w.connect()
		w.waitLog(1, "Imported whatsmeow's privacy tokens")
		for _, contact := range []types.JID{alice.LID(), bob.LID(), group} {
			if got := storedToken(t, db, "tctoken_tokens", *w.device.ID, contact); got != nil {
				t.Fatalf("the import took %s's row (%d bytes)", contact, len(got))
			}
		}

		// alice's real token arrives: it is attached, now and after a
		// restart (which goes over whatsmeow's table again).
		w.clock.Advance(time.Minute)
		w.receiveToken(alice.LID(), "alice-real")
		for i := range 2 {
			if got := childBytes(w.rawSend(alice.LID()), "tctoken"); string(got) != "alice-real" {
				t.Fatalf("run %d: tctoken %q, want alice-real", i, got)
			}
			if i == 0 {
				w.restart()
				w.waitLog(2, "Imported whatsmeow's privacy tokens")
			}
		}
		if msg := w.rawSend(bob.LID()); len(childBytes(msg, "tctoken")) > hooks.MaxTokenSize {
			t.Fatal("an oversized token from whatsmeow's table was attached")
		}
		// One line per pass; the first skipped all 3 (whatsmeow 2025-12
		// then let alice's real token replace her future-dated row).
		skipped := "Skipped whatsmeow's privacy tokens that fail the plugin's checks"
		if n, first := w.logLines(skipped), w.logLines(skipped, `"rows":3`); n != 2 || first < 1 {
			t.Fatalf("%d log lines say what the import skipped (%d of them 3 rows), want one per pass, the first of 3", n, first)
		}
	})
}
