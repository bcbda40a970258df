package wamock

import (
	"context"
	"testing"
)

// TestTwoAccountsTwoServers: a Server plays one account; two accounts take
// two servers, which run side by side in one process, each client routed
// to its own.
func TestTwoAccountsTwoServers(t *testing.T) {
	first := NewServer(t)
	second := NewServer(t, WithOwnPN("15550000002"), WithOwnLID("100000000000002"))
	cliA := first.QuickClient(t)
	cliB := second.QuickClient(t)
	if cliA.Store.ID.User != first.OwnPN().User || cliB.Store.ID.User != second.OwnPN().User {
		t.Fatalf("clients logged in as %s and %s", cliA.Store.ID, cliB.Store.ID)
	}
	ctx := context.Background()
	alice := first.AddContact(ContactOptions{})
	bob := second.AddContact(ContactOptions{})
	respA, err := cliA.SendMessage(ctx, alice.LID(), textMessage("from A"))
	if err != nil {
		t.Fatal(err)
	}
	respB, err := cliB.SendMessage(ctx, bob.LID(), textMessage("from B"))
	if err != nil {
		t.Fatal(err)
	}
	if first.MessageByID(respB.ID) != nil || second.MessageByID(respA.ID) != nil {
		t.Fatal("a server saw the other account's message")
	}
	if texts := texts(alice.Messages()); len(texts) != 1 || texts[0] != "from A" {
		t.Fatalf("alice got %q", texts)
	}
	if texts := texts(bob.Messages()); len(texts) != 1 || texts[0] != "from B" {
		t.Fatalf("bob got %q", texts)
	}
}
