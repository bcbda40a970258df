package hooks

import (
	"bytes"
	"context"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/sqlstore"
	"github.com/tctoken/tctoken/wamock"
)

// TestHistoryWriteInterleavings drives the two writers of a history-sync
// token in every order the scheduler can produce, instead of hoping it does:
// whatsmeow 2025-12's own write (through the interposer, with our sender
// timestamp filed as the token timestamp, under the PN when it does not know
// the LID yet) and the plugin's history handler (which stores the blob's
// LID mappings, the right timestamps and mends). Whatever the order, the
// contact must end with the real token timestamp and our sender timestamp,
// in the merged read and in every stored row.
func TestHistoryWriteInterleavings(t *testing.T) {
	cases := []struct {
		name string
		// mappingKnown: whatsmeow already knew the LID, so its write is
		// keyed under it; otherwise it lands under the PN.
		mappingKnown bool
		order        string
	}{
		{"whatsmeow under PN, then handler", false, "whatsmeow-first"},
		{"whatsmeow under LID, then handler", true, "whatsmeow-first"},
		{"handler, then whatsmeow", false, "handler-first"},
		{"whatsmeow checks under PN, handler runs, whatsmeow commits", false, "handler-inside"},
		{"whatsmeow checks under LID, handler runs, whatsmeow commits", true, "handler-inside"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
				runHistoryInterleaving(t, db, tc.mappingKnown, tc.order)
			})
		})
	}
}

func runHistoryInterleaving(t *testing.T, db *dbutil.Database, mappingKnown bool, order string) {
	ctx := context.Background()
	srv := wamock.NewServer(t)
	container := dbtest.WhatsmeowContainer(t, db)
	device, err := srv.NewDevice(ctx, container)
	if err != nil {
		t.Fatal(err)
	}
	cli := srv.NewClient(device, nil)
	plugin := sqlstore.New(db)
	if err := plugin.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	c := New(cli, plugin, Config{})
	if err := c.Attach(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)

	alice := srv.AddContact(wamock.ContactOptions{})
	if mappingKnown {
		if err := cli.Store.LIDs.PutLIDMapping(ctx, alice.LID(), alice.PN()); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().Unix()
	tokenTS, senderTS := now-3600, now-60
	token := []byte("alice-history")
	blob := &waHistorySync.HistorySync{
		SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(),
		Conversations: []*waHistorySync.Conversation{{
			ID: proto.String(alice.PN().String()), TcToken: token,
			TcTokenTimestamp: proto.Uint64(uint64(tokenTS)), TcTokenSenderTimestamp: proto.Uint64(uint64(senderTS)),
		}},
		PhoneNumberToLidMappings: []*waHistorySync.PhoneNumberToLIDMapping{
			{PnJID: proto.String(alice.PN().String()), LidJID: proto.String(alice.LID().String())},
		},
	}
	handler := func() { c.handleHistorySync(ctx, blob) }
	whatsmeowWrite := func() {
		// What whatsmeow 2025-12's history goroutine writes.
		err := cli.Store.PrivacyTokens.PutPrivacyTokens(ctx, store.PrivacyToken{User: alice.PN(), Token: token, Timestamp: time.Unix(senderTS, 0)})
		if err != nil {
			t.Fatal(err)
		}
	}
	switch order {
	case "whatsmeow-first":
		whatsmeowWrite()
		handler()
	case "handler-first":
		handler()
		whatsmeowWrite()
	case "handler-inside":
		ran := false
		c.beforeTokenWrite = func(source string) {
			if source == "whatsmeow" && !ran {
				ran = true
				handler()
			}
		}
		whatsmeowWrite()
		if !ran {
			t.Fatal("the handler did not run between whatsmeow's check and its write")
		}
	}

	for _, jid := range []types.JID{alice.LID(), alice.PN()} {
		got, err := c.Get(ctx, jid)
		if err != nil {
			t.Fatal(err)
		}
		if got == nil || !bytes.Equal(got.Token, token) || got.TokenTS != tokenTS || got.SenderTS != senderTS {
			t.Fatalf("merged read by %s = %+v, want token_ts %d, sender_ts %d", jid, got, tokenTS, senderTS)
		}
	}
	rows, err := plugin.ForAccount(*device.ID).GetMany(ctx, alice.LID(), alice.PN())
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		if len(row.Token) > 0 && row.TokenTS != tokenTS {
			t.Errorf("row %s holds token_ts %d, want %d: whatsmeow's misfiled timestamp was kept", row.Contact, row.TokenTS, tokenTS)
		}
	}
}
