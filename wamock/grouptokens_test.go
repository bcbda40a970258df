package wamock

import (
	"bytes"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
)

// A group create records each member's <privacy> token; a server told to
// require them refuses an add without a valid one, with
// ErrCodeMissingGroupToken, and keeps the contact out.
func TestGroupTokensRecordedAndRequired(t *testing.T) {
	srv := NewServer(t)
	cli := srv.QuickClient(t)
	ctx := testCtx(t)
	alice := srv.AddContact(ContactOptions{})
	bob := srv.AddContact(ContactOptions{})
	token := []byte("alice-token")
	if err := srv.PushPrivacyTokenAndWait(ctx, alice.LID(), types.EmptyJID, srv.OwnLID(), token, time.Now().Unix()); err != nil {
		t.Fatal(err)
	}
	// whatsmeow reads the token from its store for a create, on both
	// versions.
	info, err := cli.CreateGroup(ctx, whatsmeow.ReqCreateGroup{Name: "tokens", Participants: []types.JID{alice.LID()}})
	if err != nil {
		t.Fatal(err)
	}
	g := srv.Group(info.JID)
	if got := g.ParticipantToken(alice); !bytes.Equal(got, token) {
		t.Fatalf("alice's recorded token %q, want %q", got, token)
	}

	srv.RequireGroupTokens(func(c *Contact, got []byte) bool { return c == alice && bytes.Equal(got, token) })
	added, err := cli.UpdateGroupParticipants(ctx, info.JID, []types.JID{bob.LID()}, whatsmeow.ParticipantChangeAdd)
	if err != nil || len(added) != 1 || added[0].Error != ErrCodeMissingGroupToken {
		t.Fatalf("add without a token = %+v, %v; want error %d", added, err, ErrCodeMissingGroupToken)
	}
	if g.HasMember(bob) || g.ParticipantToken(bob) != nil {
		t.Fatal("bob was added without a token")
	}
	srv.RequireGroupTokens(nil)
	added, err = cli.UpdateGroupParticipants(ctx, info.JID, []types.JID{bob.LID()}, whatsmeow.ParticipantChangeAdd)
	if err != nil || len(added) != 1 || added[0].Error != 0 || !g.HasMember(bob) {
		t.Fatalf("add with the rule off = %+v, %v", added, err)
	}
}
