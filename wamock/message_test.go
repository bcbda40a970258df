package wamock

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
)

func textMessage(text string) *waE2E.Message {
	return &waE2E.Message{Conversation: proto.String(text)}
}

func TestSendMessageToNewContact(t *testing.T) {
	srv := NewServer(t)
	cli := srv.QuickClient(t)
	ctx := context.Background()
	alice := srv.AddContact(ContactOptions{Devices: 2})

	mark := srv.Mark()
	resp, err := cli.SendMessage(ctx, alice.PN(), textMessage("hello alice"))
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	srv.WaitForSince(t, mark, "usync device query", IsIQ("usync", "get"), time.Second)
	srv.WaitForSince(t, mark, "prekey fetch", func(n *waBinary.Node) bool {
		return IsIQ("encrypt", "get")(n) && hasChild(n, "key")
	}, time.Second)
	msg := srv.WaitForSince(t, mark, "message to alice", IsMessageTo(alice.PN()), time.Second)
	if got := strAttr(msg, "id"); got != resp.ID {
		t.Fatalf("message id %s, want %s", got, resp.ID)
	}
	decrypted, err := alice.Decrypt(msg)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if decrypted.GetConversation() != "hello alice" {
		t.Fatalf("decrypted %q", decrypted.GetConversation())
	}
	// Both of alice's devices and our phone got a copy.
	if n := len(participantEncs(msg)); n != 3 {
		t.Fatalf("message has %d <enc>s, want 3 (2 contact devices + phone)", n)
	}
	waitUntil(t, "phone decrypts the device-sent copy", func() bool {
		for _, m := range srv.Phone().Messages() {
			if m.GetDeviceSentMessage().GetMessage().GetConversation() == "hello alice" {
				return true
			}
		}
		return false
	})

	// Until alice answers, whatsmeow keeps sending prekey messages on the
	// same session; they must keep decrypting.
	resp2, err := cli.SendMessage(ctx, alice.PN(), textMessage("again"))
	if err != nil {
		t.Fatalf("second SendMessage: %v", err)
	}
	msg2 := srv.WaitFor(t, "second message", func(n *waBinary.Node) bool {
		return n.Tag == "message" && strAttr(n, "id") == resp2.ID
	}, time.Second)
	if got, err := alice.Decrypt(msg2); err != nil || got.GetConversation() != "again" {
		t.Fatalf("second Decrypt = %v, %v", got, err)
	}
	if errs := srv.Errors(); len(errs) > 0 {
		t.Fatalf("server errors: %v", errs)
	}
}

func TestSendMessageToLID(t *testing.T) {
	srv := NewServer(t)
	cli := srv.QuickClient(t)
	bob := srv.AddContact(ContactOptions{})
	resp, err := cli.SendMessage(context.Background(), bob.LID(), textMessage("hi bob"))
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	msg := srv.WaitFor(t, "message to bob's LID", IsMessageTo(bob.LID()), time.Second)
	got, err := bob.Decrypt(msg)
	if err != nil || got.GetConversation() != "hi bob" {
		t.Fatalf("Decrypt = %v, %v (id %s)", got, err, resp.ID)
	}
}

func TestContactSendText(t *testing.T) {
	srv := NewServer(t)
	cli, _ := srv.QuickUnconnectedClient(t)
	msgs := make(chan *events.Message, 4)
	cli.AddEventHandler(func(evt any) {
		if m, ok := evt.(*events.Message); ok {
			msgs <- m
		}
	})
	srv.ConnectAndWait(t, cli)
	carol := srv.AddContact(ContactOptions{PushName: "Carol"})
	ctx := context.Background()

	for _, text := range []string{"first (prekey message)", "second (normal message)"} {
		if err := carol.SendText(ctx, text); err != nil {
			t.Fatalf("SendText: %v", err)
		}
		select {
		case m := <-msgs:
			if m.Message.GetConversation() != text {
				t.Fatalf("got %q, want %q", m.Message.GetConversation(), text)
			}
			if m.Info.Sender.User != carol.LID().User || m.Info.SenderAlt.User != carol.PN().User {
				t.Fatalf("sender %s / alt %s", m.Info.Sender, m.Info.SenderAlt)
			}
			if m.Info.PushName != "Carol" {
				t.Fatalf("push name %q", m.Info.PushName)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no events.Message for %q; server errors %v", text, srv.Errors())
		}
	}
	// whatsmeow confirms delivery with a receipt.
	srv.WaitFor(t, "delivery receipt", IsTag("receipt"), 2*time.Second)

	// A reply from our client reuses the session carol started.
	resp, err := cli.SendMessage(ctx, carol.LID(), textMessage("reply"))
	if err != nil {
		t.Fatalf("reply: %v", err)
	}
	if got := carol.Messages(); len(got) != 1 || got[0].GetConversation() != "reply" {
		t.Fatalf("carol received %v (sent %s)", got, resp.ID)
	}
}

func TestContactWithoutLID(t *testing.T) {
	srv := NewServer(t)
	cli, _ := srv.QuickUnconnectedClient(t)
	got := make(chan *events.Message, 1)
	cli.AddEventHandler(func(evt any) {
		if m, ok := evt.(*events.Message); ok {
			got <- m
		}
	})
	srv.ConnectAndWait(t, cli)
	dave := srv.AddContact(ContactOptions{NoLID: true})
	if err := dave.SendText(context.Background(), "no lid here"); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m.Info.Sender.Server != types.DefaultUserServer || m.Message.GetConversation() != "no lid here" {
			t.Fatalf("got %s: %q", m.Info.Sender, m.Message.GetConversation())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
	}
	info, err := cli.GetUserInfo(context.Background(), []types.JID{dave.PN()})
	if err != nil {
		t.Fatal(err)
	}
	if !info[dave.PN()].LID.IsEmpty() {
		t.Fatalf("usync reported LID %s for a contact without one", info[dave.PN()].LID)
	}
}

func TestOfflineDelivery(t *testing.T) {
	srv := NewServer(t)
	cli, _ := srv.QuickUnconnectedClient(t)
	got := make(chan string, 1)
	cli.AddEventHandler(func(evt any) {
		if m, ok := evt.(*events.Message); ok {
			got <- m.Message.GetConversation()
		}
	})
	// The device's keys are registered up front, so a contact can write
	// before the client ever connects; the message waits for it.
	erin := srv.AddContact(ContactOptions{})
	if err := erin.SendText(context.Background(), "while you were away"); err != nil {
		t.Fatal(err)
	}
	srv.ConnectAndWait(t, cli)
	select {
	case text := <-got:
		if text != "while you were away" {
			t.Fatalf("got %q", text)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("queued message never arrived")
	}
}

func TestMessageRules(t *testing.T) {
	srv := NewServer(t)
	cli := srv.QuickClient(t)
	ctx := context.Background()
	alice := srv.AddContact(ContactOptions{})
	srv.SetMessageRule(RequireToken())

	_, err := cli.SendMessage(ctx, alice.PN(), textMessage("no token"))
	if !errors.Is(err, whatsmeow.ErrServerReturnedError) {
		t.Fatalf("SendMessage without token: %v, want ErrServerReturnedError", err)
	}
	if err.Error() != "server returned error 463" {
		t.Fatalf("error text %q", err.Error())
	}
	// A rejected message is not delivered, but can still be opened.
	if n := len(alice.Messages()); n != 0 {
		t.Fatalf("rejected message was delivered (%d)", n)
	}
	rejected := srv.MessagesTo(alice.PN())
	if got, err := alice.Decrypt(rejected[len(rejected)-1]); err != nil || got.GetConversation() != "no token" {
		t.Fatalf("Decrypt rejected = %v, %v", got, err)
	}

	// A token attached through AdditionalNodes satisfies the rule.
	_, err = cli.SendMessage(ctx, alice.PN(), textMessage("with token"), whatsmeow.SendRequestExtra{
		AdditionalNodes: &[]waBinary.Node{{Tag: "tctoken", Content: []byte("tok")}},
	})
	if err != nil {
		t.Fatalf("SendMessage with tctoken: %v", err)
	}

	salt := []byte("whatsapp_nct_salt_example")
	srv.SetMessageRule(RequireCSToken(salt))
	_, err = cli.SendMessage(ctx, alice.PN(), textMessage("bad cstoken"), whatsmeow.SendRequestExtra{
		AdditionalNodes: &[]waBinary.Node{{Tag: "cstoken", Content: make([]byte, 32)}},
	})
	if !errors.Is(err, whatsmeow.ErrServerReturnedError) {
		t.Fatalf("wrong cstoken: %v", err)
	}
	_, err = cli.SendMessage(ctx, alice.PN(), textMessage("good cstoken"), whatsmeow.SendRequestExtra{
		AdditionalNodes: &[]waBinary.Node{{Tag: "cstoken", Content: CSToken(salt, alice.LID())}},
	})
	if err != nil {
		t.Fatalf("right cstoken: %v", err)
	}

	// Custom rule: per-contact decision.
	bob := srv.AddContact(ContactOptions{})
	srv.SetMessageRule(func(_ *waBinary.Node, to *Contact) int {
		if to == bob {
			return 479
		}
		return 0
	})
	if _, err = cli.SendMessage(ctx, alice.PN(), textMessage("fine")); err != nil {
		t.Fatalf("alice: %v", err)
	}
	if _, err = cli.SendMessage(ctx, bob.PN(), textMessage("not fine")); err == nil || err.Error() != "server returned error 479" {
		t.Fatalf("bob: %v", err)
	}
}

func TestCSTokenKnownAnswer(t *testing.T) {
	got := CSToken([]byte("whatsapp_nct_salt_example"), types.NewJID("alice", types.HiddenUserServer))
	const want = "7c6afc325785ac3c4f571e648a3bb822f0e2e49434812ed2809aea2e7043b576"
	if hexString(got) != want {
		t.Fatalf("CSToken = %s, want %s", hexString(got), want)
	}
}

func waitUntil(t *testing.T, desc string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", desc)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, len(b)*2)
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&0xf])
	}
	return string(out)
}

func TestOwnDevicesGetCopies(t *testing.T) {
	srv := NewServer(t)
	first := srv.QuickClient(t)
	second, _ := srv.QuickUnconnectedClient(t)
	copies := make(chan *events.Message, 1)
	second.AddEventHandler(func(evt any) {
		if m, ok := evt.(*events.Message); ok {
			copies <- m
		}
	})
	srv.ConnectAndWait(t, second)
	alice := srv.AddContact(ContactOptions{})
	if _, err := first.SendMessage(context.Background(), alice.PN(), textMessage("from the first device")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-copies:
		// Newer whatsmeow versions send to the LID, and the copy's chat is then
		// the LID.
		chatIsAlice := m.Info.Chat.User == alice.PN().User || m.Info.Chat.User == alice.LID().User
		if !m.Info.IsFromMe || !chatIsAlice || m.Message.GetConversation() != "from the first device" {
			t.Fatalf("second device got %+v: %q", m.Info.MessageSource, m.Message.GetConversation())
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("second device got no copy; errors %v", srv.Errors())
	}
	// And a contact's message reaches both devices.
	got := make(chan string, 1)
	first.AddEventHandler(func(evt any) {
		if m, ok := evt.(*events.Message); ok {
			got <- m.Message.GetConversation()
		}
	})
	must(t, alice.SendText(context.Background(), "to both"))
	for i, ch := range []<-chan string{got} {
		select {
		case text := <-ch:
			if text != "to both" {
				t.Fatalf("device %d got %q", i, text)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("first device got nothing")
		}
	}
	select {
	case m := <-copies:
		if m.Message.GetConversation() != "to both" {
			t.Fatalf("second device got %q", m.Message.GetConversation())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second device got nothing")
	}
}

func TestLIDMigratedSendsToLID(t *testing.T) {
	srv := NewServer(t, WithLIDMigrated())
	cli := srv.QuickClient(t)
	alice := srv.AddContact(ContactOptions{})
	resp, err := cli.SendMessage(context.Background(), alice.PN(), textMessage("via lid"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Sender.Server != types.HiddenUserServer {
		t.Fatalf("sender %s, want our LID", resp.Sender)
	}
	msg := srv.WaitFor(t, "message to alice's LID", IsMessageTo(alice.LID()), time.Second)
	if got, err := alice.Decrypt(msg); err != nil || got.GetConversation() != "via lid" {
		t.Fatalf("Decrypt = %v, %v", got, err)
	}
}
