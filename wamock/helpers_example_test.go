package wamock_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/tctoken/tctoken/wamock"
)

// inATest stands for a test function: the body it is given is what you
// would write in func TestX(t *testing.T). TestExamples runs every example
// body here as a real test, so the examples stay true.
func inATest(body func(t *testing.T)) { exampleBodies = append(exampleBodies, body) }

var exampleBodies []func(t *testing.T)

func text(s string) *waE2E.Message { return &waE2E.Message{Conversation: proto.String(s)} }

// The test from wamock's README: a client sends to a phone number, gets a
// receipt and a reply, sends to a group, and the test checks the acks.
func Example_bridge() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		cli := srv.QuickClient(t) // your bridge's whatsmeow client
		ctx := context.Background()
		var receipts, replies int
		cli.AddEventHandler(func(evt any) {
			switch evt.(type) {
			case *events.Receipt:
				receipts++
			case *events.Message:
				replies++
			}
		})

		alice := srv.AddContact(wamock.ContactOptions{PushName: "Alice"})
		alice.SetAutoReceipts(wamock.ReceiptDelivered)
		resp, err := cli.SendMessage(ctx, alice.PN(), text("hi Alice"))
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.WaitHandled(ctx, resp.ID); err != nil { // her receipt
			t.Fatal(err)
		}
		if _, err := alice.SendTextAndWait(ctx, "hi back"); err != nil { // her reply
			t.Fatal(err)
		}
		group := srv.AddGroup(wamock.GroupOptions{Name: "friends", Members: []*wamock.Contact{alice}})
		groupResp, err := cli.SendMessage(ctx, group.JID(), text("hi all"))
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.WaitHandled(ctx, groupResp.ID); err != nil { // her receipt in the group
			t.Fatal(err)
		}
		for _, id := range []types.MessageID{resp.ID, groupResp.ID} {
			if ack, ok := srv.AckFor(id); !ok || !ack.Accepted() {
				t.Fatalf("ack for %s: %+v", id, ack)
			}
		}
		if receipts != 2 || replies != 1 || len(alice.Messages()) != 2 {
			t.Fatalf("%d receipts, %d replies; alice got %d messages", receipts, replies, len(alice.Messages()))
		}
	})
}

func ExampleServer_WaitHandled() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		cli := srv.QuickClient(t)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		alice := srv.AddContact(wamock.ContactOptions{})
		// Push helpers return (or, like this notification, carry) the ID to
		// wait for.
		notif := wamock.PrivacyTokenNotification(alice.LID(), types.EmptyJID, srv.OwnLID(), []byte("token"), time.Now().Unix())
		if err := srv.Push(notif); err != nil {
			t.Fatal(err)
		}
		if err := srv.WaitHandled(ctx, notif.Attrs["id"].(string)); err != nil {
			t.Fatal(err)
		}
		// Handled: whatsmeow has stored the token.
		if tok, err := cli.Store.PrivacyTokens.GetPrivacyToken(ctx, alice.LID()); err != nil || tok == nil {
			t.Fatalf("token not stored: %v", err)
		}
	})
}

func ExampleServer_PushAndWait() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		srv.QuickClient(t)
		// A notification whatsmeow does not know is acked and ignored.
		err := srv.PushAndWait(context.Background(), waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{
			"type": "business", "from": types.ServerJID,
		}})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func ExampleServer_PushToAndWait() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		cli := srv.QuickClient(t)
		// To one device of ours (queued if it is offline: give the wait a
		// deadline then).
		err := srv.PushToAndWait(context.Background(), cli.Store.ID.Device, waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{
			"type": "business", "from": types.ServerJID,
		}})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func ExampleServer_PushPrivacyTokenAndWait() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		cli := srv.QuickClient(t)
		ctx := context.Background()
		alice := srv.AddContact(wamock.ContactOptions{})
		err := srv.PushPrivacyTokenAndWait(ctx, alice.LID(), types.EmptyJID, srv.OwnLID(), []byte("token"), time.Now().Unix())
		if err != nil {
			t.Fatal(err)
		}
		// Stored by now: no polling.
		if tok, err := cli.Store.PrivacyTokens.GetPrivacyToken(ctx, alice.LID()); err != nil || tok == nil {
			t.Fatalf("token not stored: %v", err)
		}
	})
}

func ExampleServer_AckFor() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		cli := srv.QuickClient(t)
		alice := srv.AddContact(wamock.ContactOptions{})
		srv.SetMessageRule(wamock.RequireToken())
		// resp.ID is set even when SendMessage returns the server's error.
		resp, _ := cli.SendMessage(context.Background(), alice.PN(), text("no token"))
		ack, ok := srv.AckFor(resp.ID)
		if !ok || ack.Accepted() || ack.Error != wamock.ErrorCodeNoToken {
			t.Fatalf("ack %+v", ack)
		}
	})
}

func ExampleAck_Accepted() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		cli := srv.QuickClient(t)
		alice := srv.AddContact(wamock.ContactOptions{})
		resp, err := cli.SendMessage(context.Background(), alice.LID(), text("hi"))
		if err != nil {
			t.Fatal(err)
		}
		if ack, _ := srv.AckFor(resp.ID); !ack.Accepted() {
			t.Fatalf("rejected with %d", ack.Error)
		}
	})
}

func ExampleServer_MessageByID() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		cli := srv.QuickClient(t)
		alice := srv.AddContact(wamock.ContactOptions{})
		resp, err := cli.SendMessage(context.Background(), alice.LID(), text("hi"))
		if err != nil {
			t.Fatal(err)
		}
		msg := srv.MessageByID(resp.ID)
		if wamock.MessageToken(msg) != nil {
			t.Fatal("no token was stored, yet the message carries one")
		}
	})
}

func ExampleIsMessageTo() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t, wamock.WithLIDMigrated())
		cli := srv.QuickClient(t)
		alice := srv.AddContact(wamock.ContactOptions{})
		if _, err := cli.SendMessage(context.Background(), alice.PN(), text("hi")); err != nil {
			t.Fatal(err)
		}
		// whatsmeow wrote to alice's LID; her PN finds the message too.
		srv.WaitFor(t, "message to alice", wamock.IsMessageTo(alice.PN()), time.Second)
	})
}

func ExampleSameAccount() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		alice := srv.AddContact(wamock.ContactOptions{})
		if !wamock.SameAccount(alice.PN(), alice.LID()) || !wamock.SameAccount(srv.OwnPN(), srv.OwnLID()) {
			t.Fatal("PN and LID of one account")
		}
	})
}

func ExampleContact_SendMessageAndWait() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		cli := srv.QuickClient(t)
		var texts []string
		cli.AddEventHandler(func(evt any) {
			if m, ok := evt.(*events.Message); ok {
				texts = append(texts, m.Message.GetConversation())
			}
		})
		alice := srv.AddContact(wamock.ContactOptions{})
		if _, err := alice.SendMessageAndWait(context.Background(), text("hello")); err != nil {
			t.Fatal(err)
		}
		// The handler has run.
		if !slices.Equal(texts, []string{"hello"}) {
			t.Fatalf("got %q", texts)
		}
	})
}

func ExampleContact_SendTextAndWait() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		cli := srv.QuickClient(t)
		alice := srv.AddContact(wamock.ContactOptions{})
		if _, err := alice.SendTextAndWait(context.Background(), "hello"); err != nil {
			t.Fatal(err)
		}
		// whatsmeow learned alice's LID<->PN mapping from the message.
		if pn, err := cli.Store.LIDs.GetPNForLID(context.Background(), alice.LID()); err != nil || pn.User != alice.PN().User {
			t.Fatalf("mapping %s, %v", pn, err)
		}
	})
}

func ExampleContact_SendReceipt() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		cli := srv.QuickClient(t)
		ctx := context.Background()
		var receipts []*events.Receipt
		cli.AddEventHandler(func(evt any) {
			if r, ok := evt.(*events.Receipt); ok {
				receipts = append(receipts, r)
			}
		})
		alice := srv.AddContact(wamock.ContactOptions{})
		resp, err := cli.SendMessage(ctx, alice.PN(), text("read this"))
		if err != nil {
			t.Fatal(err)
		}
		id, err := alice.SendReceipt(ctx, wamock.ReceiptRead, resp.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.WaitHandled(ctx, id); err != nil {
			t.Fatal(err)
		}
		if len(receipts) != 1 || receipts[0].Type != types.ReceiptTypeRead {
			t.Fatalf("receipts %+v", receipts)
		}
	})
}

func ExampleContact_SetAutoReceipts() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		cli := srv.QuickClient(t)
		ctx := context.Background()
		var kinds []types.ReceiptType
		cli.AddEventHandler(func(evt any) {
			if r, ok := evt.(*events.Receipt); ok {
				kinds = append(kinds, r.Type)
			}
		})
		alice := srv.AddContact(wamock.ContactOptions{})
		alice.SetAutoReceipts(wamock.ReceiptDelivered, wamock.ReceiptRead)
		resp, err := cli.SendMessage(ctx, alice.LID(), text("hi"))
		if err != nil {
			t.Fatal(err)
		}
		// The receipts carry the message's ID.
		if err := srv.WaitHandled(ctx, resp.ID); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(kinds, []types.ReceiptType{types.ReceiptTypeDelivered, types.ReceiptTypeRead}) {
			t.Fatalf("receipt types %q", kinds)
		}
	})
}

func ExampleContact_SetAvailable() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		cli := srv.QuickClient(t)
		ctx := context.Background()
		presences := make(chan *events.Presence, 4)
		cli.AddEventHandler(func(evt any) {
			if p, ok := evt.(*events.Presence); ok {
				presences <- p
			}
		})
		alice := srv.AddContact(wamock.ContactOptions{})
		if err := cli.SubscribePresence(ctx, alice.LID()); err != nil {
			t.Fatal(err)
		}
		if p := <-presences; !p.Unavailable {
			t.Fatal("contacts start unavailable")
		}
		key, err := alice.SetAvailable(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.WaitHandled(ctx, key); err != nil {
			t.Fatal(err)
		}
		if p := <-presences; p.Unavailable {
			t.Fatal("alice should be available")
		}
	})
}

func ExampleContact_SendChatPresence() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		cli := srv.QuickClient(t)
		ctx := context.Background()
		var typing []types.ChatPresence
		cli.AddEventHandler(func(evt any) {
			if p, ok := evt.(*events.ChatPresence); ok {
				typing = append(typing, p.State)
			}
		})
		alice := srv.AddContact(wamock.ContactOptions{})
		key, err := alice.SendChatPresence(ctx, types.ChatPresenceComposing, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.WaitHandled(ctx, key); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(typing, []types.ChatPresence{types.ChatPresenceComposing}) {
			t.Fatalf("chat presence %v", typing)
		}
	})
}

func ExampleServer_AddGroup() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		cli := srv.QuickClient(t)
		alice := srv.AddContact(wamock.ContactOptions{})
		bob := srv.AddContact(wamock.ContactOptions{})
		g := srv.AddGroup(wamock.GroupOptions{Name: "book club", Creator: alice, Members: []*wamock.Contact{bob}})
		info, err := cli.GetGroupInfo(context.Background(), g.JID())
		if err != nil || info.Name != "book club" || len(info.Participants) != 3 {
			t.Fatalf("info %+v, %v", info, err)
		}
	})
}

func ExampleServer_Group() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		cli := srv.QuickClient(t)
		alice := srv.AddContact(wamock.ContactOptions{})
		info, err := cli.CreateGroup(context.Background(), whatsmeow.ReqCreateGroup{Name: "new", Participants: []types.JID{alice.PN()}})
		if err != nil {
			t.Fatal(err)
		}
		if g := srv.Group(info.JID); g == nil || !g.HasMember(alice) {
			t.Fatal("the server should know the group and alice in it")
		}
	})
}

func ExampleServer_Groups() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		srv.AddGroup(wamock.GroupOptions{Name: "one"})
		srv.AddGroup(wamock.GroupOptions{Name: "two"})
		var names []string
		for _, g := range srv.Groups() {
			names = append(names, g.Name())
		}
		if !slices.Equal(names, []string{"one", "two"}) {
			t.Fatalf("groups %q", names)
		}
	})
}

func ExampleGroup_Members() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		alice := srv.AddContact(wamock.ContactOptions{})
		g := srv.AddGroup(wamock.GroupOptions{Members: []*wamock.Contact{alice}})
		if m := g.Members(); len(m) != 1 || m[0] != alice || !g.HasMember(alice) {
			t.Fatalf("members %v", m)
		}
	})
}

func ExampleGroup_Sync() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		cli := srv.QuickClient(t)
		ctx := context.Background()
		alice := srv.AddContact(wamock.ContactOptions{})
		bob := srv.AddContact(wamock.ContactOptions{})
		g := srv.AddGroup(wamock.GroupOptions{Members: []*wamock.Contact{alice}})
		if _, err := cli.SendMessage(ctx, g.JID(), text("first")); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.UpdateGroupParticipants(ctx, g.JID(), []types.JID{bob.LID()}, whatsmeow.ParticipantChangeAdd); err != nil {
			t.Fatal(err)
		}
		// whatsmeow updates its cached member list from the notification
		// that follows the IQ: wait for it before the next send.
		if err := g.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.SendMessage(ctx, g.JID(), text("second")); err != nil {
			t.Fatal(err)
		}
		if n := len(bob.Messages()); n != 1 {
			t.Fatalf("bob got %d messages", n)
		}
	})
}

func ExampleContact_SendGroupText() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		srv.QuickClient(t)
		ctx := context.Background()
		alice := srv.AddContact(wamock.ContactOptions{})
		g := srv.AddGroup(wamock.GroupOptions{Members: []*wamock.Contact{alice}})
		id, err := alice.SendGroupText(ctx, g, "hello group")
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.WaitHandled(ctx, id); err != nil {
			t.Fatal(err)
		}
	})
}

func ExampleContact_SendGroupTextAndWait() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		cli := srv.QuickClient(t)
		var chats []types.JID
		cli.AddEventHandler(func(evt any) {
			if m, ok := evt.(*events.Message); ok && m.Message.GetConversation() != "" {
				chats = append(chats, m.Info.Chat)
			}
		})
		alice := srv.AddContact(wamock.ContactOptions{})
		g := srv.AddGroup(wamock.GroupOptions{Members: []*wamock.Contact{alice}})
		if _, err := alice.SendGroupTextAndWait(context.Background(), g, "hello group"); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(chats, []types.JID{g.JID()}) {
			t.Fatalf("messages in %v", chats)
		}
	})
}

func ExampleContact_SendGroupMessage() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		srv.QuickClient(t)
		ctx := context.Background()
		alice := srv.AddContact(wamock.ContactOptions{})
		g := srv.AddGroup(wamock.GroupOptions{Members: []*wamock.Contact{alice}})
		id, err := alice.SendGroupMessage(ctx, g, &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String("a link")}})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.WaitHandled(ctx, id); err != nil {
			t.Fatal(err)
		}
	})
}

func ExampleParticipantTokens() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		cli := srv.QuickClient(t)
		ctx := context.Background()
		alice := srv.AddContact(wamock.ContactOptions{})
		if err := srv.PushPrivacyTokenAndWait(ctx, alice.LID(), types.EmptyJID, srv.OwnLID(), []byte("tok"), time.Now().Unix()); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.CreateGroup(ctx, whatsmeow.ReqCreateGroup{Name: "g", Participants: []types.JID{alice.LID()}}); err != nil {
			t.Fatal(err)
		}
		iq := srv.WaitFor(t, "group create", wamock.IsIQ("w:g2", "set"), time.Second)
		if string(wamock.ParticipantTokens(iq)[alice.LID()]) != "tok" {
			t.Fatal("whatsmeow attaches the stored token to the participant")
		}
	})
}

// TestExamples runs the body of every example above.
func TestExamples(t *testing.T) {
	for name, example := range map[string]func(){
		"bridge": Example_bridge, "WaitHandled": ExampleServer_WaitHandled,
		"PushAndWait": ExampleServer_PushAndWait, "PushToAndWait": ExampleServer_PushToAndWait,
		"PushPrivacyTokenAndWait": ExampleServer_PushPrivacyTokenAndWait, "AckFor": ExampleServer_AckFor,
		"Accepted": ExampleAck_Accepted, "MessageByID": ExampleServer_MessageByID,
		"IsMessageTo": ExampleIsMessageTo, "SameAccount": ExampleSameAccount,
		"SendMessageAndWait": ExampleContact_SendMessageAndWait, "SendTextAndWait": ExampleContact_SendTextAndWait,
		"SendReceipt": ExampleContact_SendReceipt, "SetAutoReceipts": ExampleContact_SetAutoReceipts,
		"SetAvailable": ExampleContact_SetAvailable, "SendChatPresence": ExampleContact_SendChatPresence,
		"AddGroup": ExampleServer_AddGroup, "Group": ExampleServer_Group, "Groups": ExampleServer_Groups,
		"Members": ExampleGroup_Members, "Sync": ExampleGroup_Sync, "SendGroupText": ExampleContact_SendGroupText,
		"SendGroupTextAndWait": ExampleContact_SendGroupTextAndWait, "SendGroupMessage": ExampleContact_SendGroupMessage,
		"ParticipantTokens": ExampleParticipantTokens, "WaitAllHandled": ExampleServer_WaitAllHandled,
	} {
		exampleBodies = nil
		example()
		if len(exampleBodies) != 1 {
			t.Fatalf("example %s has %d bodies", name, len(exampleBodies))
		}
		t.Run(name, exampleBodies[0])
	}
}

func ExampleServer_WaitAllHandled() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		cli := srv.QuickClient(t)
		ctx := context.Background()
		alice := srv.AddContact(wamock.ContactOptions{})
		// PushPrivacyToken returns no ID: wait for everything instead.
		if err := srv.PushPrivacyToken(alice.LID(), types.EmptyJID, srv.OwnLID(), []byte("token"), time.Now().Unix()); err != nil {
			t.Fatal(err)
		}
		if err := srv.WaitAllHandled(ctx); err != nil {
			t.Fatal(err)
		}
		if tok, err := cli.Store.PrivacyTokens.GetPrivacyToken(ctx, alice.LID()); err != nil || tok == nil {
			t.Fatalf("token not stored: %v", err)
		}
	})
}
