package wamock

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// eventLog collects the events of one type a client emits.
type eventLog[T any] struct {
	mu   sync.Mutex
	list []T
	ch   chan T
}

func collect[T any](cli *whatsmeow.Client) *eventLog[T] {
	l := &eventLog[T]{ch: make(chan T, 64)}
	cli.AddEventHandler(func(evt any) {
		if e, ok := evt.(T); ok {
			l.mu.Lock()
			l.list = append(l.list, e)
			l.mu.Unlock()
			select {
			case l.ch <- e:
			default:
			}
		}
	})
	return l
}

func (l *eventLog[T]) all() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]T(nil), l.list...)
}

// next waits for the next event; the timeout only keeps a broken test
// from hanging.
func (l *eventLog[T]) next(t *testing.T, what string) T {
	t.Helper()
	select {
	case e := <-l.ch:
		return e
	case <-time.After(5 * time.Second):
		var zero T
		t.Fatalf("no %s", what)
		return zero
	}
}

func TestContactReceipts(t *testing.T) {
	srv := NewServer(t)
	cli, _ := srv.QuickUnconnectedClient(t)
	receipts := collect[*events.Receipt](cli)
	srv.ConnectAndWait(t, cli)
	ctx := testCtx(t)
	alice := srv.AddContact(ContactOptions{})
	bob := srv.AddContact(ContactOptions{})

	// Automatic: alice confirms delivery and reading of what she gets.
	alice.SetAutoReceipts(ReceiptDelivered, ReceiptRead)
	resp, err := cli.SendMessage(ctx, alice.LID(), textMessage("hi alice"))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitHandled(ctx, resp.ID); err != nil {
		t.Fatal(err)
	}
	got := receipts.all()
	if len(got) != 2 || got[0].Type != types.ReceiptTypeDelivered || got[1].Type != types.ReceiptTypeRead {
		t.Fatalf("receipts %+v, want delivered then read", got)
	}
	for _, r := range got {
		if r.MessageIDs[0] != resp.ID || r.Sender.User != alice.LID().User || r.Chat.User != alice.LID().User {
			t.Fatalf("receipt %+v for %s", r, resp.ID)
		}
	}

	// On demand, for two messages at once, from the address our client
	// wrote to: bob's PN, or his LID for a whatsmeow that sends a PN chat's
	// messages to the LID.
	var ids []types.MessageID
	for _, text := range []string{"one", "two"} {
		resp, err := cli.SendMessage(ctx, bob.PN(), textMessage(text))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, resp.ID)
	}
	if len(receipts.all()) != 2 {
		t.Fatal("bob sent receipts without being asked")
	}
	id, err := bob.SendReceipt(ctx, ReceiptRead, ids...)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitHandled(ctx, id); err != nil {
		t.Fatal(err)
	}
	got = receipts.all()[2:]
	wrote := jidAttr(srv.MessageByID(ids[0]), "to")
	if len(got) != 1 || got[0].Type != types.ReceiptTypeRead || len(got[0].MessageIDs) != 2 || got[0].Sender.User != wrote.User {
		t.Fatalf("bob's receipts %+v, want one read receipt for %v from %s", got, ids, wrote)
	}
	if _, err := bob.SendReceipt(ctx, ReceiptRead, "never-sent"); err == nil {
		t.Fatal("a receipt for a message our client never sent was accepted")
	}
}

func TestContactPresence(t *testing.T) {
	srv := NewServer(t)
	cli, _ := srv.QuickUnconnectedClient(t)
	presences := collect[*events.Presence](cli)
	srv.ConnectAndWait(t, cli)
	ctx := testCtx(t)
	alice := srv.AddContact(ContactOptions{})

	// Nobody subscribed yet: nothing goes out, nothing to wait for.
	key, err := alice.SetAvailable(ctx, false)
	if err != nil || srv.WaitHandled(ctx, key) != nil {
		t.Fatalf("SetAvailable before a subscription: %v", err)
	}
	if err := cli.SubscribePresence(ctx, alice.LID()); err != nil {
		t.Fatal(err)
	}
	first := presences.next(t, "presence answering the subscription")
	if !first.Unavailable || first.From.User != alice.LID().User || first.LastSeen.IsZero() {
		t.Fatalf("first presence %+v, want alice unavailable with a last seen", first)
	}
	key, err = alice.SetAvailable(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitHandled(ctx, key); err != nil {
		t.Fatal(err)
	}
	got := presences.all()
	if len(got) != 2 || got[1].Unavailable || got[1].From.User != alice.LID().User {
		t.Fatalf("presences %+v, want alice available last", got)
	}
}

func TestContactChatPresence(t *testing.T) {
	srv := NewServer(t)
	cli, _ := srv.QuickUnconnectedClient(t)
	states := collect[*events.ChatPresence](cli)
	srv.ConnectAndWait(t, cli)
	ctx := context.Background()
	alice := srv.AddContact(ContactOptions{})
	for _, state := range []types.ChatPresence{types.ChatPresenceComposing, types.ChatPresencePaused} {
		key, err := alice.SendChatPresence(ctx, state, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.WaitHandled(testCtx(t), key); err != nil {
			t.Fatal(err)
		}
	}
	got := states.all()
	if len(got) != 2 || got[0].State != types.ChatPresenceComposing || got[1].State != types.ChatPresencePaused {
		t.Fatalf("chat presences %+v", got)
	}
	if got[0].Chat.User != alice.LID().User || got[0].Sender.User != alice.LID().User {
		t.Fatalf("chat presence from %s in %s", got[0].Sender, got[0].Chat)
	}
}
