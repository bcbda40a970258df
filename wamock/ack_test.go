package wamock

import (
	"context"
	"errors"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
)

func TestAckForAndMessageByID(t *testing.T) {
	srv := NewServer(t)
	cli := srv.QuickClient(t)
	alice := srv.AddContact(ContactOptions{})
	ctx := context.Background()

	srv.SetMessageRule(RequireToken())
	resp, err := cli.SendMessage(ctx, alice.LID(), textMessage("rejected"))
	if !errors.Is(err, whatsmeow.ErrServerReturnedError) {
		t.Fatalf("SendMessage = %v, want the server's error", err)
	}
	ack, ok := srv.AckFor(resp.ID)
	if !ok || ack.Accepted() || ack.Error != ErrorCodeNoToken {
		t.Fatalf("AckFor(%s) = %+v, %v; want error %d", resp.ID, ack, ok, ErrorCodeNoToken)
	}
	if msg := srv.MessageByID(resp.ID); msg == nil || !IsMessageTo(alice.LID())(msg) {
		t.Fatalf("MessageByID = %v", msg)
	}

	srv.SetMessageRule(nil)
	resp, err = cli.SendMessage(ctx, alice.LID(), textMessage("accepted"))
	if err != nil {
		t.Fatal(err)
	}
	if ack, ok := srv.AckFor(resp.ID); !ok || !ack.Accepted() {
		t.Fatalf("AckFor(%s) = %+v, %v; want accepted", resp.ID, ack, ok)
	}
	if _, ok := srv.AckFor("never-sent"); ok {
		t.Fatal("AckFor found an ack for a message never sent")
	}
	if srv.MessageByID("never-sent") != nil {
		t.Fatal("MessageByID found a message never sent")
	}
}

// TestIsMessageToEitherAddress: a LID-migrated client sends to the LID when
// given the PN; the matcher finds the message by either address, and not
// by another contact's.
func TestIsMessageToEitherAddress(t *testing.T) {
	srv := NewServer(t, WithLIDMigrated())
	cli := srv.QuickClient(t)
	alice := srv.AddContact(ContactOptions{})
	bob := srv.AddContact(ContactOptions{})
	resp, err := cli.SendMessage(context.Background(), alice.PN(), textMessage("to the PN"))
	if err != nil {
		t.Fatal(err)
	}
	msg := srv.MessageByID(resp.ID)
	if to := jidAttr(msg, "to"); to.User != alice.LID().User {
		t.Fatalf("whatsmeow addressed %s; this test needs a LID-addressed message", to)
	}
	for _, jid := range []types.JID{alice.PN(), alice.LID()} {
		if !IsMessageTo(jid)(msg) {
			t.Errorf("IsMessageTo(%s) does not match a message to %s", jid, jidAttr(msg, "to"))
		}
	}
	if IsMessageTo(bob.PN())(msg) || IsMessageTo(bob.LID())(msg) {
		t.Error("IsMessageTo(bob) matches a message to alice")
	}
	if got := srv.MessagesTo(alice.PN()); len(got) != 1 {
		t.Errorf("MessagesTo(alice's PN) = %d messages", len(got))
	}
	if !SameAccount(srv.OwnPN(), srv.OwnLID()) || SameAccount(alice.PN(), bob.LID()) {
		t.Error("SameAccount")
	}
}
