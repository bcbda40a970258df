package wamock

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// testCtx bounds a test's waits; the tests assert on what happened, never
// on how long it took.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestPushPrivacyTokenAndWait: once the wait returns, whatsmeow has stored
// the token; no polling.
func TestPushPrivacyTokenAndWait(t *testing.T) {
	srv := NewServer(t)
	cli := srv.QuickClient(t)
	alice := srv.AddContact(ContactOptions{})
	ctx := testCtx(t)
	if err := srv.PushPrivacyTokenAndWait(ctx, alice.LID(), types.EmptyJID, srv.OwnLID(), []byte("alice-token"), 1700000000); err != nil {
		t.Fatal(err)
	}
	stored, err := cli.Store.PrivacyTokens.GetPrivacyToken(ctx, alice.LID())
	if err != nil || stored == nil || string(stored.Token) != "alice-token" {
		t.Fatalf("stored token %+v, %v", stored, err)
	}
	// The barrier went out and came back acked, after the token's ack.
	var barrierAcked bool
	for _, n := range srv.Received() {
		if n.Tag == "ack" && strAttr(n, "type") == barrierType {
			barrierAcked = true
		}
	}
	if !barrierAcked {
		t.Fatal("no acked barrier notification")
	}
}

// TestSendTextAndWait: the events.Message handler has run when the wait
// returns.
func TestSendTextAndWait(t *testing.T) {
	srv := NewServer(t)
	cli, _ := srv.QuickUnconnectedClient(t)
	var mu sync.Mutex
	var got []string
	cli.AddEventHandler(func(evt any) {
		if m, ok := evt.(*events.Message); ok {
			mu.Lock()
			got = append(got, m.Message.GetConversation())
			mu.Unlock()
		}
	})
	srv.ConnectAndWait(t, cli)
	carol := srv.AddContact(ContactOptions{})
	id, err := carol.SendTextAndWait(testCtx(t), "are you there?")
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != "are you there?" {
		t.Fatalf("events.Message texts %q", got)
	}
	receipt := srv.WaitFor(t, "delivery receipt", func(n *waBinary.Node) bool {
		return n.Tag == "receipt" && strAttr(n, "id") == id
	}, time.Second)
	if typ := strAttr(receipt, "type"); typ == "retry" {
		t.Fatalf("receipt type %q", typ)
	}
}

// TestPushAndWaitReportsRetry: a message whatsmeow cannot decrypt is not
// "handled": the error says it asked for a retry.
func TestPushAndWaitReportsRetry(t *testing.T) {
	srv := NewServer(t)
	cli := srv.QuickClient(t)
	alice := srv.AddContact(ContactOptions{})
	undecryptable := make(chan struct{}, 1)
	cli.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.UndecryptableMessage); ok {
			select {
			case undecryptable <- struct{}{}:
			default:
			}
		}
	})
	err := srv.PushAndWait(testCtx(t), waBinary.Node{Tag: "message", Attrs: waBinary.Attrs{
		"from": alice.LID(), "sender_pn": alice.PN(), "type": "text",
	}, Content: []waBinary.Node{{Tag: "enc", Attrs: waBinary.Attrs{"v": "2", "type": "msg"}, Content: []byte("not a signal message")}}})
	if err == nil || !strings.Contains(err.Error(), "retry") && !strings.Contains(err.Error(), "without a delivery receipt") {
		t.Fatalf("PushAndWait = %v, want a retry or missing-receipt error", err)
	}
	select {
	case <-undecryptable:
	default:
		t.Fatal("the client did not report an undecryptable message, though it was handled")
	}
}

// TestPushQueuesForOfflineDevice: Push keeps a notification for a device
// that is offline; WaitHandled waits until the device is back and has
// handled it.
func TestPushQueuesForOfflineDevice(t *testing.T) {
	srv := NewServer(t)
	cli := srv.QuickClient(t)
	alice := srv.AddContact(ContactOptions{})
	ctx := testCtx(t)
	srv.WaitIdle(cli.Store.ID.Device, 2*time.Second)
	cli.Disconnect()
	waitUntil(t, "disconnect", func() bool { return len(srv.ConnectedDevices()) == 0 })

	notif := PrivacyTokenNotification(alice.LID(), types.EmptyJID, srv.OwnLID(), []byte("while away"), 1700000000)
	if err := srv.Push(notif); err != nil {
		t.Fatalf("Push to an offline device: %v", err)
	}
	id := strAttr(&notif, "id")
	waitErr := make(chan error, 1)
	go func() { waitErr <- srv.WaitHandled(ctx, id) }()
	srv.ConnectAndWait(t, cli)
	if err := <-waitErr; err != nil {
		t.Fatal(err)
	}
	stored, err := cli.Store.PrivacyTokens.GetPrivacyToken(ctx, alice.LID())
	if err != nil || stored == nil || string(stored.Token) != "while away" {
		t.Fatalf("stored token %+v, %v", stored, err)
	}

	// With no device of ours known, Push says so.
	if err := NewServer(t).Push(notif); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Push with no devices: %v", err)
	}
	// WaitHandled on an ID the server never sent is an error, not a hang.
	if err := srv.WaitHandled(ctx, "no-such-id"); err == nil {
		t.Fatal("WaitHandled on an unknown ID returned nil")
	}
}

// TestPushToAndWaitTimesOutOnOfflineDevice: the error of a wait that ends
// says the device is offline.
func TestPushToAndWaitTimesOutOnOfflineDevice(t *testing.T) {
	srv := NewServer(t)
	cli := srv.QuickClient(t)
	srv.WaitIdle(cli.Store.ID.Device, 2*time.Second)
	cli.Disconnect()
	waitUntil(t, "disconnect", func() bool { return len(srv.ConnectedDevices()) == 0 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := srv.PushToAndWait(ctx, cli.Store.ID.Device, waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{"type": "test", "from": types.ServerJID}})
	if err == nil || !strings.Contains(err.Error(), "offline") {
		t.Fatalf("PushToAndWait = %v, want an error that names the offline device", err)
	}
}

// TestPushAndWaitWithoutID: a stanza that carries no ID (a presence) is
// waited for on the connected devices; its handler has run on return.
func TestPushAndWaitWithoutID(t *testing.T) {
	srv := NewServer(t)
	cli, _ := srv.QuickUnconnectedClient(t)
	presences := collect[*events.Presence](cli)
	srv.ConnectAndWait(t, cli)
	alice := srv.AddContact(ContactOptions{})
	if err := srv.PushAndWait(testCtx(t), waBinary.Node{Tag: "presence", Attrs: waBinary.Attrs{"from": alice.LID()}}); err != nil {
		t.Fatal(err)
	}
	if got := presences.all(); len(got) != 1 || got[0].From.User != alice.LID().User || got[0].Unavailable {
		t.Fatalf("presences %+v", got)
	}
	if err := srv.PushToAndWait(testCtx(t), cli.Store.ID.Device, waBinary.Node{Tag: "presence", Attrs: waBinary.Attrs{"from": alice.LID(), "type": "unavailable"}}); err != nil {
		t.Fatal(err)
	}
	if got := presences.all(); len(got) != 2 || !got[1].Unavailable {
		t.Fatalf("presences %+v", got)
	}
}

// TestWaitAllHandled: for a helper that returns no ID, waiting for
// everything sent so far is enough to see its effect.
func TestWaitAllHandled(t *testing.T) {
	srv := NewServer(t)
	cli := srv.QuickClient(t)
	alice := srv.AddContact(ContactOptions{})
	ctx := testCtx(t)
	if err := srv.PushPrivacyToken(alice.LID(), types.EmptyJID, srv.OwnLID(), []byte("no id needed"), 1700000000); err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitAllHandled(ctx); err != nil {
		t.Fatal(err)
	}
	stored, err := cli.Store.PrivacyTokens.GetPrivacyToken(ctx, alice.LID())
	if err != nil || stored == nil || string(stored.Token) != "no id needed" {
		t.Fatalf("stored token %+v, %v", stored, err)
	}
}
