package wamock

import (
	"context"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types/events"
)

func TestIdentityChanges(t *testing.T) {
	srv := NewServer(t)
	cli, _ := srv.QuickUnconnectedClient(t)
	msgs := make(chan string, 8)
	changes := make(chan *events.IdentityChange, 8)
	cli.AddEventHandler(func(evt any) {
		switch e := evt.(type) {
		case *events.Message:
			msgs <- e.Message.GetConversation()
		case *events.IdentityChange:
			changes <- e
		}
	})
	srv.ConnectAndWait(t, cli)
	carol := srv.AddContact(ContactOptions{})
	ctx := context.Background()
	expectText := func(want string) {
		t.Helper()
		select {
		case got := <-msgs:
			if got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no events.Message %q; server errors %v", want, srv.Errors())
		}
	}
	expectChange := func(implicit bool) *events.IdentityChange {
		t.Helper()
		select {
		case c := <-changes:
			if c.Implicit != implicit {
				t.Fatalf("IdentityChange.Implicit = %v, want %v", c.Implicit, implicit)
			}
			return c
		case <-time.After(5 * time.Second):
			t.Fatalf("no events.IdentityChange{Implicit: %v}", implicit)
			return nil
		}
	}

	must(t, carol.SendText(ctx, "before"))
	expectText("before")

	// Reinstall: the next prekey message carries an identity whatsmeow has
	// not seen, which it trusts after emitting an implicit change.
	carol.Reinstall()
	must(t, carol.SendText(ctx, "after reinstall"))
	change := expectChange(true)
	if change.JID.User != carol.LID().User {
		t.Fatalf("implicit change for %s, want %s", change.JID, carol.LID())
	}
	expectText("after reinstall")

	// The explicit notification.
	must(t, carol.NotifyIdentityChange())
	change = expectChange(false)
	if change.JID.User != carol.LID().User {
		t.Fatalf("explicit change for %s", change.JID)
	}
	// whatsmeow dropped the session; the contact starts a new one.
	must(t, carol.SendText(ctx, "after notification"))
	expectText("after notification")
	select {
	case c := <-changes:
		t.Fatalf("unexpected extra identity change %+v", c)
	default:
	}

	// Our client can still write to carol on the new session.
	if _, err := cli.SendMessage(ctx, carol.LID(), textMessage("still friends")); err != nil {
		t.Fatal(err)
	}
	if got := carol.Messages(); got[len(got)-1].GetConversation() != "still friends" {
		t.Fatalf("carol got %v", got)
	}
}
