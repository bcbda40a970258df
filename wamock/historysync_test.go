package wamock

import (
	"context"
	"testing"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
)

func TestHistorySync(t *testing.T) {
	srv := NewServer(t)
	cli, _ := srv.QuickUnconnectedClient(t)
	got := make(chan *waHistorySync.HistorySync, 1)
	cli.AddEventHandler(func(evt any) {
		if hs, ok := evt.(*events.HistorySync); ok {
			got <- hs.Data
		}
	})
	srv.ConnectAndWait(t, cli)
	alice := srv.AddContact(ContactOptions{})
	ctx := context.Background()

	hs := &waHistorySync.HistorySync{
		SyncType:   waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(),
		ChunkOrder: proto.Uint32(1),
		Progress:   proto.Uint32(100),
		Conversations: []*waHistorySync.Conversation{{
			ID:                     proto.String(alice.PN().String()),
			TcToken:                []byte("alice-token"),
			TcTokenTimestamp:       proto.Uint64(1700000000),
			TcTokenSenderTimestamp: proto.Uint64(1700000100),
		}},
	}
	must(t, srv.Phone().SendHistorySync(ctx, hs, HistorySyncNctSaltRaw([]byte("history-salt"))))

	var data *waHistorySync.HistorySync
	select {
	case data = <-got:
	case <-time.After(5 * time.Second):
		t.Fatalf("no events.HistorySync; server errors %v", srv.Errors())
	}
	if len(data.GetConversations()) != 1 {
		t.Fatalf("conversations: %v", data.GetConversations())
	}
	conv := data.GetConversations()[0]
	if conv.GetID() != alice.PN().String() || string(conv.GetTcToken()) != "alice-token" ||
		conv.GetTcTokenTimestamp() != 1700000000 || conv.GetTcTokenSenderTimestamp() != 1700000100 {
		t.Fatalf("conversation: %v", conv)
	}
	salt, ok := HistorySyncNctSalt(data)
	if !ok || string(salt) != "history-salt" {
		t.Fatalf("field 19 = %q, %v", salt, ok)
	}
	// whatsmeow stores the conversation's token itself (in a goroutine).
	waitUntil(t, "token from history stored", func() bool {
		tok, err := cli.Store.PrivacyTokens.GetPrivacyToken(ctx, alice.PN())
		return err == nil && tok != nil && string(tok.Token) == "alice-token"
	})
	// The client acknowledges the notification with a hist_sync receipt.
	srv.WaitFor(t, "hist_sync receipt", func(n *waBinary.Node) bool {
		return n.Tag == "receipt" && strAttr(n, "type") == "hist_sync"
	}, 2*time.Second)
}
