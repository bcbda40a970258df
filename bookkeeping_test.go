package tctoken_test

import (
	"database/sql"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	waBinary "go.mau.fi/whatsmeow/binary"
	wsqlstore "go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/wamock"
)

// whatsmeowSenderTS reads the sender timestamp whatsmeow's own table holds
// for jid: ok is false when the table has no such column (whatsmeow
// 2025-12) or no row for jid.
func (w *world) whatsmeowSenderTS(jid types.JID) (ts int64, ok bool) {
	w.t.Helper()
	has, err := w.db.ColumnExists(w.ctx, "whatsmeow_privacy_tokens", "sender_timestamp")
	if err != nil {
		w.t.Fatal(err)
	}
	if !has {
		return 0, false
	}
	var got sql.NullInt64
	err = w.db.QueryRow(w.ctx, `SELECT sender_timestamp FROM whatsmeow_privacy_tokens WHERE their_jid=$1`, jid.String()).Scan(&got)
	if err == sql.ErrNoRows {
		return 0, false
	} else if err != nil {
		w.t.Fatal(err)
	}
	return got.Int64, true
}

// An issuance the server accepts with an empty result (the real server's
// usual reply: no token bytes) still records the sender timestamp, and a
// restart in the same bucket does not issue again: not through the plugin,
// and on the newer whatsmeow not through whatsmeow alone either.
func TestIssuanceEmptyReplyRecorded(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		var answered atomic.Int32
		w.srv.SetPrivacyHandler(func(iq *waBinary.Node) *waBinary.Node {
			answered.Add(1)
			return wamock.ResultIQ(iq) // accepted, no <tokens>
		})
		carol := w.srv.AddContact(wamock.ContactOptions{})
		dave := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(dave.LID(), "dave-token")
		mark := w.srv.Mark()
		for _, c := range []*wamock.Contact{carol, dave} {
			if _, err := w.plugin.SendMessage(w.ctx, c.LID(), text("hi")); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, "both issued", func() bool {
			return len(w.privacyIQsFor(mark, carol.LID())) == 1 && len(w.privacyIQsFor(mark, dave.LID())) == 1
		})
		for _, c := range []*wamock.Contact{carol, dave} {
			eventually(t, "sender timestamp of "+c.LID().String(), func() bool { return w.senderTS(c.LID()) > 0 })
		}
		if !w.plugin.NativeTokens() {
			if ts := w.senderTS(carol.LID()); ts != w.clock.Now().Unix() {
				t.Fatalf("carol's sender timestamp %d, want the issuance's t %d", ts, w.clock.Now().Unix())
			}
		}
		// whatsmeow's own table: the newer whatsmeow has the column, and
		// the row of a contact with a token carries the timestamp; a
		// contact without a token has no row there (its token column is
		// NOT NULL), as with whatsmeow alone.
		if w.plugin.NativeTokens() {
			eventually(t, "dave's sender timestamp in whatsmeow's table", func() bool {
				ts, ok := w.whatsmeowSenderTS(dave.LID())
				return ok && ts == w.senderTS(dave.LID())
			})
			if _, ok := w.whatsmeowSenderTS(carol.LID()); ok {
				t.Fatal("whatsmeow's table has a row for a contact without a token")
			}
		}

		w.restart()
		for _, c := range []*wamock.Contact{carol, dave} {
			if _, err := w.plugin.SendMessage(w.ctx, c.LID(), text("after a restart")); err != nil {
				t.Fatal(err)
			}
			if w.plugin.NativeTokens() {
				if _, err := w.cli.SendMessage(w.ctx, c.LID(), text("and through whatsmeow alone")); err != nil {
					t.Fatal(err)
				}
			}
		}
		if w.plugin.NativeTokens() {
			w.plugin.Close()
			w.srv.WaitIdle(w.deviceNum, time.Second)
		} else {
			w.sendAndFlush(w.srv.AddContact(wamock.ContactOptions{}).LID())
		}
		for _, c := range []*wamock.Contact{carol, dave} {
			if n := len(w.privacyIQsFor(mark, c.LID())); n != 1 {
				t.Errorf("%s: %d privacy IQs in one bucket across a restart, want 1", c.LID(), n)
			}
		}
		if answered.Load() == 0 {
			t.Fatal("the handler answered no issuance")
		}
	})
}

// whatsmeowReadsSenderTS is the sender timestamp whatsmeow alone reads for
// jid from its own table (the row under jid or its twin by the LID map,
// the newest), through its own SQL store: ok is false without a row.
func (w *world) whatsmeowReadsSenderTS(jid types.JID) (ts int64, ok bool) {
	w.t.Helper()
	row, err := wsqlstore.NewSQLStore(w.container, *w.device.ID).GetPrivacyToken(w.ctx, jid)
	if err != nil {
		w.t.Fatal(err)
	}
	if row == nil {
		return 0, false
	}
	field := reflect.ValueOf(row).Elem().FieldByName("SenderTimestamp")
	if !field.IsValid() {
		w.t.Fatal("whatsmeow's PrivacyToken has no SenderTimestamp")
	}
	if sender := field.Interface().(time.Time); !sender.IsZero() {
		return sender.Unix(), true
	}
	return 0, true
}

// An issuance to several contacts copies its sender timestamp into
// whatsmeow's own table (whatsmeow 33cfac51 has the column), where
// whatsmeow alone reads it after the plugin is gone: for a contact with a
// token there, and for one whose row is under its phone number while the
// plugin knows it by LID; not for a contact without a token (no row is
// made), and never over a newer timestamp. With whatsmeow's store on the
// plugin's database that is one statement for the batch; with the
// plugin's tables in a database of their own, a read and a write per
// contact through whatsmeow's store, to the same effect.
func TestIssuanceSenderTimestampsInWhatsmeowsTable(t *testing.T) {
	const batchLine = "Copied the sender timestamp into whatsmeow's table in one statement"
	for _, layout := range []string{"one database", "the plugin's apart"} {
		t.Run(layout, func(t *testing.T) {
			forEachDB(t, func(t *testing.T, db *dbutil.Database) {
				w := newBareWorld(t, db, nil)
				joined := layout == "one database"
				if !joined {
					w.pluginDB = separateDB(t, db)()
				}
				w.start()
				if !w.plugin.NativeTokens() {
					t.Skip("whatsmeow 2025-12's table has no sender_timestamp column")
				}
				w.connect()
				alice := w.srv.AddContact(wamock.ContactOptions{})
				bob := w.srv.AddContact(wamock.ContactOptions{})
				carol := w.srv.AddContact(wamock.ContactOptions{})
				dave := w.srv.AddContact(wamock.ContactOptions{})
				w.receiveToken(alice.LID(), "alice-token")
				w.receiveToken(bob.LID(), "bob-token")
				// The copy into whatsmeow's table may come after the plugin's
				// own write.
				for _, c := range []*wamock.Contact{alice, bob} {
					eventually(t, "whatsmeow's row for "+c.LID().String(), func() bool { _, ok := w.whatsmeowReadsSenderTS(c.LID()); return ok })
				}
				now := w.clock.Now().Unix()
				if _, err := w.db.Exec(w.ctx, `UPDATE whatsmeow_privacy_tokens SET sender_timestamp=$1 WHERE our_jid=$2 AND their_jid=$3`,
					now+3600, w.device.ID.String(), bob.LID().String()); err != nil {
					t.Fatal(err)
				}
				if got, _ := w.whatsmeowReadsSenderTS(bob.LID()); got != now+3600 {
					t.Fatalf("bob's newer sender timestamp was not set: %d", got)
				}
				contacts := []types.JID{alice.LID(), bob.LID(), carol.LID()}
				if joined {
					// whatsmeow holds dave's token under his number; the plugin
					// knows him by LID.
					if err := w.cli.Store.LIDs.PutLIDMapping(w.ctx, dave.LID(), dave.PN()); err != nil {
						t.Fatal(err)
					}
					w.secret([]byte("dave-token"))
					raw := wsqlstore.NewSQLStore(w.container, *w.device.ID)
					if err := raw.PutPrivacyTokens(w.ctx, storeToken(dave.PN(), "dave-token", w.clock.Now())); err != nil {
						t.Fatal(err)
					}
					contacts = append(contacts, dave.LID())
				}

				if _, err := w.plugin.IssueTokens(w.ctx, contacts); err != nil {
					t.Fatal(err)
				}
				for _, c := range contacts {
					if ts := w.senderTS(c); ts != now {
						t.Errorf("%s: the plugin's sender timestamp %d, want %d", c, ts, now)
					}
				}
				want := map[types.JID]int64{alice.LID(): now, bob.LID(): now + 3600}
				if joined {
					want[dave.LID()] = now
				}
				for c, ts := range want {
					if got, ok := w.whatsmeowReadsSenderTS(c); !ok || got != ts {
						t.Errorf("%s: whatsmeow reads the sender timestamp %d (row: %v), want %d", c, got, ok, ts)
					}
				}
				if _, ok := w.whatsmeowReadsSenderTS(carol.LID()); ok {
					t.Error("whatsmeow's table has a row for a contact without a token")
				}
				batches := w.logLines(batchLine, fmt.Sprintf(`"contacts":%d`, len(contacts)))
				if joined && batches != 1 {
					t.Errorf("%d batch statements logged, want 1", batches)
				} else if !joined && w.logLines(batchLine) != 0 {
					t.Error("the plugin wrote whatsmeow's table itself, though it is in another database")
				}
			})
		})
	}
}
