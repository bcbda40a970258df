package tctoken_test

import (
	"bytes"
	"testing"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/wamock"
)

// TestOversizedSaltRefused: a 1 MB salt from app state is refused with an
// error that says why; a sane salt afterwards is taken.
func TestOversizedSaltRefused(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t)).connect()
	if err := w.srv.Phone().ShareAppStateKeys(w.ctx); err != nil {
		t.Fatal(err)
	}
	huge := bytes.Repeat([]byte{0x5a}, 1<<20)
	if err := w.srv.Phone().SetNCTSalt(w.ctx, huge); err != nil {
		t.Fatal(err)
	}
	w.waitLog(1, "Failed to store the NCT salt from app state", "1048576 bytes, over the 256-byte limit")
	if w.plugin.HasSalt() {
		t.Fatal("a 1 MB salt must be refused")
	}
	w.setSaltViaAppState(testSalt)
}

// TestTokenFromOwnAccountRefused: a privacy_token notification "from" our
// own PN or LID stores nothing, neither under that JID nor under the LID
// the PN maps to; a contact's token sent afterwards is stored.
func TestTokenFromOwnAccountRefused(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		ownPN, ownLID := w.srv.OwnPN(), w.srv.OwnLID()
		if err := w.cli.Store.LIDs.PutLIDMapping(w.ctx, ownLID, ownPN); err != nil {
			t.Fatal(err)
		}
		w.pushToken(ownPN, types.EmptyJID, []byte("from-our-pn"), w.clock.Now())
		w.pushToken(ownLID, types.EmptyJID, []byte("from-our-lid"), w.clock.Now())
		w.waitLog(2, "Rejected a privacy token", "our own account")
		alice := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(alice.LID(), "alice-token")
		for _, jid := range []types.JID{ownPN, ownLID} {
			if e, err := w.plugin.Get(w.ctx, jid); err != nil || e != nil {
				t.Errorf("a token from our own account (%s) was stored: %+v, %v", jid, e, err)
			}
		}
		if all, _ := w.plugin.GetAllJIDs(w.ctx); len(all) != 1 || all[0] != alice.LID() {
			t.Errorf("stored contacts = %v, want only alice", all)
		}
	})
}
