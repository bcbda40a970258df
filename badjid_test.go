package tctoken_test

import (
	"testing"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/tctoken/tctoken/wamock"
)

// A JID that PostgreSQL cannot store (a NUL byte, bytes that are not
// UTF-8; proto2 strings and binary-node strings carry either unchecked)
// costs its own token and nothing else, on both databases. Before, on
// PostgreSQL such a conversation failed the history blob's batch, and every
// token in it was lost, while SQLite stored the garbage key.
func TestUnstorableJIDsAreRefusedAlone(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		w.srv.SetMessageRule(wamock.RequireToken())
		alice := w.srv.AddContact(wamock.ContactOptions{})
		bob := w.srv.AddContact(wamock.ContactOptions{})
		w.waitLog(1, "Imported whatsmeow's privacy tokens")
		now := w.clock.Now().Unix()
		conv := func(id, token string) *waHistorySync.Conversation {
			w.secret([]byte(token))
			return &waHistorySync.Conversation{
				ID: proto.String(id), TcToken: []byte(token),
				TcTokenTimestamp: proto.Uint64(uint64(now - 10)), TcTokenSenderTimestamp: proto.Uint64(uint64(now - 5)),
			}
		}
		w.plugin.HandleHistorySync(w.ctx, &waHistorySync.HistorySync{
			SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(),
			Conversations: []*waHistorySync.Conversation{
				conv(alice.LID().String(), "alice-history"),
				conv("1555\x00123@s.whatsapp.net", "nul-history"),
				conv("\xff\xfe77@lid", "utf8-history"),
				conv(bob.PN().String(), "bob-history"),
			},
			PhoneNumberToLidMappings: []*waHistorySync.PhoneNumberToLIDMapping{
				{PnJID: proto.String("1555\x00999@s.whatsapp.net"), LidJID: proto.String("999@lid")},
				{PnJID: proto.String(bob.PN().String()), LidJID: proto.String(bob.LID().String())},
			},
		})
		if n := w.logLines("Failed to store"); n != 0 {
			t.Fatalf("%d writes of the blob failed", n)
		}
		for _, reason := range []string{"holds a NUL byte", "is not valid UTF-8"} {
			if n := w.logLines(`"level":"warn"`, "Ignored a history-sync", reason); n == 0 {
				t.Errorf("no warning says a JID %s", reason)
			}
		}
		if lid, err := w.cli.Store.LIDs.GetLIDForPN(w.ctx, bob.PN()); err != nil || lid != bob.LID() {
			t.Errorf("bob's mapping from the blob: %v, %v", lid, err)
		}
		// The good conversations' tokens reach the server, bob's under his
		// LID.
		if got := childBytes(w.rawSend(alice.LID()), "tctoken"); string(got) != "alice-history" {
			t.Errorf("to alice: tctoken %q, want alice-history", got)
		}
		if got := childBytes(w.rawSend(bob.LID()), "tctoken"); string(got) != "bob-history" {
			t.Errorf("to bob: tctoken %q, want bob-history", got)
		}

		// The same JID in a privacy_token notification is refused with a
		// warning; the next token is stored as usual.
		w.pushToken(types.NewJID("1555\x00123", types.HiddenUserServer), types.EmptyJID, []byte("nul-notified"), w.clock.Now())
		w.waitLog(1, `"level":"warn"`, "Rejected a privacy token", "holds a NUL byte")
		w.receiveToken(alice.LID(), "alice-notified")

		var rows int
		if err := db.QueryRow(w.ctx, `SELECT COUNT(*) FROM tctoken_tokens WHERE our_jid=$1`, w.device.ID.String()).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows != 2 {
			t.Errorf("%d rows in the plugin's table, want alice's and bob's only", rows)
		}
	})
}
