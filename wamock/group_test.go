package wamock

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// texts lists the conversation texts a contact decrypted.
func texts(msgs []*waE2E.Message) []string {
	var out []string
	for _, m := range msgs {
		if text := m.GetConversation(); text != "" {
			out = append(out, text)
		}
	}
	return out
}

func TestGroupLifecycle(t *testing.T) {
	srv := NewServer(t)
	cli, _ := srv.QuickUnconnectedClient(t)
	joined := collect[*events.JoinedGroup](cli)
	changes := collect[*events.GroupInfo](cli)
	srv.ConnectAndWait(t, cli)
	ctx := testCtx(t)
	alice := srv.AddContact(ContactOptions{})
	bob := srv.AddContact(ContactOptions{})
	carol := srv.AddContact(ContactOptions{})
	alice.SetAutoReceipts(ReceiptDelivered)

	// Create, by PN and by LID.
	info, err := cli.CreateGroup(ctx, whatsmeow.ReqCreateGroup{Name: "wamock group", Participants: []types.JID{alice.PN(), bob.LID()}})
	if err != nil {
		t.Fatal(err)
	}
	g := srv.Group(info.JID)
	if g == nil || g.Name() != "wamock group" || !g.HasMember(alice) || !g.HasMember(bob) || g.HasMember(carol) {
		t.Fatalf("server's group %+v", g)
	}
	if len(info.Participants) != 3 || info.AddressingMode != types.AddressingModeLID {
		t.Fatalf("CreateGroup returned %+v", info)
	}
	if err := g.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := joined.all(); len(got) != 1 || got[0].JID != info.JID {
		t.Fatalf("JoinedGroup events %+v", got)
	}

	// Info.
	fetched, err := cli.GetGroupInfo(ctx, info.JID)
	if err != nil || fetched.Name != "wamock group" || len(fetched.Participants) != 3 {
		t.Fatalf("GetGroupInfo = %+v, %v", fetched, err)
	}
	if _, err := cli.GetGroupInfo(ctx, types.NewJID("120363999999999999", types.GroupServer)); err == nil {
		t.Fatal("GetGroupInfo of an unknown group succeeded")
	}

	// Our message: each member decrypts it with our sender key. The receipt
	// collector is in place before the send: alice's automatic receipt can
	// reach the client before SendMessage returns.
	receipts := collect[*events.Receipt](cli)
	resp, err := cli.SendMessage(ctx, info.JID, textMessage("hello group"))
	if err != nil {
		t.Fatal(err)
	}
	if ack, ok := srv.AckFor(resp.ID); !ok || !ack.Accepted() {
		t.Fatalf("ack %+v, %v", ack, ok)
	}
	msg := srv.MessageByID(resp.ID)
	if MessageToken(msg) != nil || MessageCSToken(msg) != nil {
		t.Fatal("a group message carries a token")
	}
	for _, c := range []*Contact{alice, bob} {
		if got := texts(c.Messages()); !slices.Equal(got, []string{"hello group"}) {
			t.Fatalf("%s decrypted %q", c.PN().User, got)
		}
	}
	// alice's automatic delivery receipt names the group and her.
	if err := srv.WaitHandled(ctx, resp.ID); err != nil {
		t.Fatal(err)
	}
	if got := receipts.all(); len(got) != 1 || got[0].Chat != info.JID || got[0].Sender.User != alice.LID().User {
		t.Fatalf("group receipts %+v", got)
	}

	// Add carol, remove bob.
	added, err := cli.UpdateGroupParticipants(ctx, info.JID, []types.JID{carol.LID()}, whatsmeow.ParticipantChangeAdd)
	if err != nil || len(added) != 1 || added[0].Error != 0 || added[0].JID.User != carol.LID().User {
		t.Fatalf("add = %+v, %v", added, err)
	}
	removed, err := cli.UpdateGroupParticipants(ctx, info.JID, []types.JID{bob.LID()}, whatsmeow.ParticipantChangeRemove)
	if err != nil || len(removed) != 1 || removed[0].Error != 0 {
		t.Fatalf("remove = %+v, %v", removed, err)
	}
	stranger := types.NewJID("15559990000", types.DefaultUserServer)
	failed, err := cli.UpdateGroupParticipants(ctx, info.JID, []types.JID{stranger}, whatsmeow.ParticipantChangeAdd)
	if err != nil || len(failed) != 1 || failed[0].Error != 404 {
		t.Fatalf("adding a stranger = %+v, %v", failed, err)
	}
	if !g.HasMember(carol) || g.HasMember(bob) {
		t.Fatal("membership on the server")
	}
	if err := g.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	var joins, leaves int
	for _, c := range changes.all() {
		joins += len(c.Join)
		leaves += len(c.Leave)
	}
	if joins != 1 || leaves != 1 {
		t.Fatalf("GroupInfo events: %d joins, %d leaves", joins, leaves)
	}
	if _, err := cli.SendMessage(ctx, info.JID, textMessage("after the changes")); err != nil {
		t.Fatal(err)
	}
	if got := texts(carol.Messages()); !slices.Equal(got, []string{"after the changes"}) {
		t.Fatalf("carol decrypted %q", got)
	}
	if got := texts(bob.Messages()); !slices.Equal(got, []string{"hello group"}) {
		t.Fatalf("bob, removed, decrypted %q", got)
	}
	if errs := srv.Errors(); len(errs) > 0 {
		t.Fatalf("server errors: %v", errs)
	}
}

func TestContactGroupMessage(t *testing.T) {
	srv := NewServer(t)
	cli, _ := srv.QuickUnconnectedClient(t)
	msgs := collect[*events.Message](cli)
	srv.ConnectAndWait(t, cli)
	ctx := testCtx(t)
	alice := srv.AddContact(ContactOptions{})
	bob := srv.AddContact(ContactOptions{})
	g := srv.AddGroup(GroupOptions{Name: "alice's", Creator: alice, Members: []*Contact{bob}})

	for _, text := range []string{"first, with a new sender key", "second, same key"} {
		if _, err := alice.SendGroupTextAndWait(ctx, g, text); err != nil {
			t.Fatal(err)
		}
	}
	// whatsmeow also emits the sender key part as a message of its own.
	var got []*events.Message
	for _, m := range msgs.all() {
		if m.Message.GetConversation() != "" {
			got = append(got, m)
		}
	}
	if len(got) != 2 {
		t.Fatalf("%d text messages", len(got))
	}
	for i, m := range got {
		if m.Info.Chat != g.JID() || m.Info.Sender.User != alice.LID().User || !m.Info.IsGroup {
			t.Fatalf("message %d from %s in %s", i, m.Info.Sender, m.Info.Chat)
		}
	}
	if got[1].Message.GetConversation() != "second, same key" {
		t.Fatalf("second text %q", got[1].Message.GetConversation())
	}
	// Our answer reaches both members; the group's info names alice its
	// creator.
	if _, err := cli.SendMessage(ctx, g.JID(), textMessage("hi both")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Contact{alice, bob} {
		if got := texts(c.Messages()); !slices.Equal(got, []string{"hi both"}) {
			t.Fatalf("%s decrypted %q", c.PN().User, got)
		}
	}
	info, err := cli.GetGroupInfo(ctx, g.JID())
	if err != nil || info.OwnerJID.User != alice.LID().User {
		t.Fatalf("GetGroupInfo = %+v, %v", info, err)
	}
	if _, err := srv.AddContact(ContactOptions{}).SendGroupText(ctx, g, "not a member"); err == nil {
		t.Fatal("a non-member sent to the group")
	}
}

// TestGroupCreateCarriesPrivacyTokens: whatsmeow attaches a stored tctoken
// to a participant of CreateGroup; ParticipantTokens reads it.
func TestGroupCreateCarriesPrivacyTokens(t *testing.T) {
	srv := NewServer(t)
	cli := srv.QuickClient(t)
	ctx := testCtx(t)
	alice := srv.AddContact(ContactOptions{})
	bob := srv.AddContact(ContactOptions{})
	// A current timestamp: newer whatsmeow attaches no expired token.
	if err := srv.PushPrivacyTokenAndWait(ctx, alice.LID(), types.EmptyJID, srv.OwnLID(), []byte("alice-token"), time.Now().Unix()); err != nil {
		t.Fatal(err)
	}
	mark := srv.Mark()
	if _, err := cli.CreateGroup(ctx, whatsmeow.ReqCreateGroup{Name: "tokens", Participants: []types.JID{alice.LID(), bob.LID()}}); err != nil {
		t.Fatal(err)
	}
	iq := srv.WaitForSince(t, mark, "group create IQ", func(n *waBinary.Node) bool {
		return IsIQ("w:g2", "set")(n) && hasChild(n, "create")
	}, time.Second)
	tokens := ParticipantTokens(iq)
	if len(tokens) != 1 || string(tokens[alice.LID()]) != "alice-token" {
		t.Fatalf("participant tokens %q", tokens)
	}

	// On add, only the newer whatsmeow attaches one.
	if err := srv.PushPrivacyTokenAndWait(ctx, bob.LID(), types.EmptyJID, srv.OwnLID(), []byte("bob-token"), time.Now().Unix()); err != nil {
		t.Fatal(err)
	}
	carol := srv.AddContact(ContactOptions{})
	info, err := cli.CreateGroup(ctx, whatsmeow.ReqCreateGroup{Name: "adds", Participants: []types.JID{carol.LID()}})
	if err != nil {
		t.Fatal(err)
	}
	mark = srv.Mark()
	if _, err := cli.UpdateGroupParticipants(ctx, info.JID, []types.JID{bob.LID()}, whatsmeow.ParticipantChangeAdd); err != nil {
		t.Fatal(err)
	}
	iq = srv.WaitForSince(t, mark, "group add IQ", func(n *waBinary.Node) bool {
		return IsIQ("w:g2", "set")(n) && hasChild(n, "add")
	}, time.Second)
	tokens = ParticipantTokens(iq)
	if attachesTokensOnAdd(cli) {
		if len(tokens) != 1 || string(tokens[bob.LID()]) != "bob-token" {
			t.Fatalf("participant tokens on add %q", tokens)
		}
	} else if tokens != nil {
		t.Fatalf("this whatsmeow sends no tokens on add, got %q", tokens)
	}
}

// attachesTokensOnAdd tells a whatsmeow that puts privacy tokens on
// participant adds: the newer one, which has EnsureTCToken among its
// dangerous internals.
func attachesTokensOnAdd(cli *whatsmeow.Client) bool {
	//lint:ignore SA1019 the method set of the internals is what tells the newer whatsmeow from 2025-12.
	return reflect.ValueOf(cli.DangerousInternals()).MethodByName("EnsureTCToken").IsValid()
}
