package tctoken_test

import (
	"database/sql"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	waBinary "go.mau.fi/whatsmeow/binary"
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
