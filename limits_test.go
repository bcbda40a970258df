package tctoken_test

import (
	"bytes"
	"testing"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

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

// TestHistoryMappingToOwnLIDRefused: a history blob maps a contact's
// number to our own LID. Neither whatsmeow's write nor the plugin's files
// the contact's token (or a sender timestamp) under our own account.
// Found by .ci/fuzz (FuzzHistorySyncTokens).
func TestHistoryMappingToOwnLIDRefused(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		bob := w.srv.AddContact(wamock.ContactOptions{})
		now := uint64(w.clock.Now().Unix())
		hs := &waHistorySync.HistorySync{
			SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(),
			Conversations: []*waHistorySync.Conversation{
				{ID: proto.String(bob.PN().String()), TcToken: []byte("bob-history"),
					TcTokenTimestamp: proto.Uint64(now - 60), TcTokenSenderTimestamp: proto.Uint64(now - 30)},
				{ID: proto.String(alice.PN().String()), TcToken: []byte("alice-history"), TcTokenTimestamp: proto.Uint64(now - 60)},
			},
			PhoneNumberToLidMappings: []*waHistorySync.PhoneNumberToLIDMapping{
				{PnJID: proto.String(bob.PN().String()), LidJID: proto.String(w.srv.OwnLID().String())},
				{PnJID: proto.String(alice.PN().String()), LidJID: proto.String(alice.LID().String())},
			},
		}
		if err := w.srv.Phone().SendHistorySync(w.ctx, hs, nil); err != nil {
			t.Fatal(err)
		}
		w.waitToken(alice.LID(), []byte("alice-history"))
		w.waitLog(1, `"level":"debug"`, "Stored history-sync privacy tokens")
		w.plugin.Close() // waits for the history handler
		for _, jid := range []types.JID{w.srv.OwnLID(), w.srv.OwnPN()} {
			if e, err := w.plugin.Get(w.ctx, jid); err != nil || e != nil {
				t.Errorf("something was filed under our own %s: %+v, %v", jid, e, err)
			}
		}
		all, _ := w.plugin.GetAllJIDs(w.ctx)
		for _, jid := range all {
			if jid == w.srv.OwnLID() || jid == w.srv.OwnPN() {
				t.Errorf("a row is keyed by our own account: %v", all)
			}
		}
		// Bob's token stays bob's, under his number.
		if e, _ := w.plugin.Get(w.ctx, bob.PN()); e == nil || string(e.Token) != "bob-history" || e.JID != bob.PN() {
			t.Errorf("bob's entry: %+v", e)
		}
	})
}
