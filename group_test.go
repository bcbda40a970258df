package tctoken_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/wamock"
)

// groupIQ returns the w:g2 set IQ since mark whose first child is tag.
func (w *world) groupIQ(mark int, tag string) *waBinary.Node {
	w.t.Helper()
	return w.srv.WaitForSince(w.t, mark, "group "+tag+" IQ", func(n *waBinary.Node) bool {
		if !wamock.IsIQ("w:g2", "set")(n) {
			return false
		}
		children := n.GetChildren()
		return len(children) > 0 && children[0].Tag == tag
	}, 5*time.Second)
}

// mapLIDs tells whatsmeow each contact's LID and phone number, as a usync
// or a group's member list would have.
func (w *world) mapLIDs(contacts ...*wamock.Contact) {
	w.t.Helper()
	for _, c := range contacts {
		if err := w.cli.Store.LIDs.PutLIDMapping(w.ctx, c.LID(), c.PN()); err != nil {
			w.t.Fatal(err)
		}
	}
}

// tokenOf finds the <privacy> token sent for a contact, under either JID.
func tokenOf(tokens map[types.JID][]byte, c *wamock.Contact) []byte {
	if token, ok := tokens[c.LID()]; ok {
		return token
	}
	return tokens[c.PN()]
}

// An add through the plugin carries each added contact's valid tctoken only
// when AB prop 11262 allows it; off (the default), it carries none, and
// through whatsmeow alone it carries what that whatsmeow attaches.
func TestGroupAddTokens(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db)
		w.srv.SetABProps(wamock.ABProps{Hash: "h1", Props: map[int]string{tctoken.PropGroupAddToken: "0"}})
		w.connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		bob := w.srv.AddContact(wamock.ContactOptions{})
		carol := w.srv.AddContact(wamock.ContactOptions{})
		dave := w.srv.AddContact(wamock.ContactOptions{})
		w.mapLIDs(alice, bob, carol, dave)
		w.receiveToken(alice.LID(), "alice-token")
		w.receiveToken(bob.LID(), "bob-token")
		info, err := w.plugin.CreateGroup(w.ctx, whatsmeow.ReqCreateGroup{Name: "g", Participants: []types.JID{dave.LID()}})
		if err != nil {
			t.Fatal(err)
		}
		group := w.srv.Group(info.JID)

		// Gate off: no token, from either whatsmeow.
		mark := w.srv.Mark()
		added, err := w.plugin.UpdateGroupParticipants(w.ctx, info.JID, []types.JID{alice.LID()}, whatsmeow.ParticipantChangeAdd)
		if err != nil || len(added) != 1 || added[0].Error != 0 {
			t.Fatalf("add with the gate off = %+v, %v", added, err)
		}
		if tokens := wamock.ParticipantTokens(w.groupIQ(mark, "add")); len(tokens) != 0 {
			t.Fatalf("AB prop 11262 off: the add carried %d tokens", len(tokens))
		}

		// Gate on: the contact with a token gets it, by LID or by phone
		// number; the one without gets none.
		w.srv.SetABProps(wamock.ABProps{Hash: "h2", Props: map[int]string{tctoken.PropGroupAddToken: "1"}})
		w.reconnect()
		eventually(t, "prop 11262 applied", func() bool { return w.plugin.Policy().GroupAddTokens })
		mark = w.srv.Mark()
		added, err = w.plugin.UpdateGroupParticipants(w.ctx, info.JID, []types.JID{bob.PN(), carol.LID()}, whatsmeow.ParticipantChangeAdd)
		if err != nil || len(added) != 2 {
			t.Fatalf("add with the gate on = %+v, %v", added, err)
		}
		for _, p := range added {
			if p.Error != 0 || p.LID.IsEmpty() || p.PhoneNumber.IsEmpty() {
				t.Errorf("participant parsed as %+v, want no error and both addresses", p)
			}
		}
		tokens := wamock.ParticipantTokens(w.groupIQ(mark, "add"))
		if !bytes.Equal(tokenOf(tokens, bob), []byte("bob-token")) || tokenOf(tokens, carol) != nil || len(tokens) != 1 {
			t.Fatalf("tokens sent %q, want bob's alone", tokens)
		}
		if !group.HasMember(bob) || !group.HasMember(carol) || !bytes.Equal(group.ParticipantToken(bob), []byte("bob-token")) {
			t.Fatal("the server's group does not hold bob with his token and carol")
		}

		// A server that requires tokens refuses carol's next add, and takes
		// alice's with hers.
		valid := map[*wamock.Contact][]byte{alice: []byte("alice-token"), bob: []byte("bob-token")}
		w.srv.RequireGroupTokens(func(c *wamock.Contact, token []byte) bool {
			return token != nil && bytes.Equal(valid[c], token)
		})
		if _, err := w.plugin.UpdateGroupParticipants(w.ctx, info.JID, []types.JID{alice.LID(), carol.LID()}, whatsmeow.ParticipantChangeRemove); err != nil {
			t.Fatal(err)
		}
		added, err = w.plugin.UpdateGroupParticipants(w.ctx, info.JID, []types.JID{alice.LID(), carol.LID()}, whatsmeow.ParticipantChangeAdd)
		if err != nil || len(added) != 2 {
			t.Fatalf("add against a requiring server = %+v, %v", added, err)
		}
		for _, p := range added {
			want := 0
			if p.JID.User == carol.LID().User {
				want = wamock.ErrCodeMissingGroupToken
			}
			if p.Error != want {
				t.Errorf("%s: error %d, want %d", p.JID, p.Error, want)
			}
		}
		if !group.HasMember(alice) || group.HasMember(carol) {
			t.Fatal("alice must be in, carol out")
		}

		// whatsmeow alone: 2025-12 attaches nothing and is refused; the
		// newer one attaches by itself.
		if _, err := w.cli.UpdateGroupParticipants(w.ctx, info.JID, []types.JID{alice.LID()}, whatsmeow.ParticipantChangeRemove); err != nil {
			t.Fatal(err)
		}
		alone, err := w.cli.UpdateGroupParticipants(w.ctx, info.JID, []types.JID{alice.LID()}, whatsmeow.ParticipantChangeAdd)
		if err != nil || len(alone) != 1 {
			t.Fatalf("whatsmeow alone = %+v, %v", alone, err)
		}
		if want := !w.plugin.NativeTokens(); (alone[0].Error == wamock.ErrCodeMissingGroupToken) != want {
			t.Fatalf("whatsmeow alone (native %v): error %d", w.plugin.NativeTokens(), alone[0].Error)
		}

		// Errors: the server's, errors.Is-able as with the client.
		unknown := types.NewJID("120363999999999999", types.GroupServer)
		_, err = w.plugin.UpdateGroupParticipants(w.ctx, unknown, []types.JID{alice.LID()}, whatsmeow.ParticipantChangeAdd)
		if !errors.Is(err, whatsmeow.ErrIQNotFound) {
			t.Fatalf("add to an unknown group: %v, want whatsmeow.ErrIQNotFound", err)
		}
		if !w.plugin.NativeTokens() && (!errors.Is(err, tctoken.ErrGroupUpdate) || !bytes.Contains([]byte(err.Error()), []byte(unknown.String()))) {
			t.Fatalf("the plugin's own add: %v, want ErrGroupUpdate naming the group", err)
		}
	})
}

// AB prop 11261 gates the tokens of a group create through the plugin;
// whatsmeow's own CreateGroup keeps attaching them.
func TestGroupCreateTokens(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		bob := w.srv.AddContact(wamock.ContactOptions{})
		w.mapLIDs(alice, bob)
		w.receiveToken(alice.LID(), "alice-token")
		create := func(through string) map[types.JID][]byte {
			t.Helper()
			mark := w.srv.Mark()
			req := whatsmeow.ReqCreateGroup{Name: through, Participants: []types.JID{alice.PN(), bob.LID()}}
			var err error
			if through == "plugin" {
				_, err = w.plugin.CreateGroup(w.ctx, req)
			} else {
				_, err = w.cli.CreateGroup(w.ctx, req)
			}
			if err != nil {
				t.Fatalf("create through %s: %v", through, err)
			}
			return wamock.ParticipantTokens(w.groupIQ(mark, "create"))
		}
		if tokens := create("plugin"); len(tokens) != 0 {
			t.Fatalf("AB prop 11261 off (default): the create carried %d tokens", len(tokens))
		}
		if tokens := create("whatsmeow"); !bytes.Equal(tokenOf(tokens, alice), []byte("alice-token")) || len(tokens) != 1 {
			t.Fatalf("whatsmeow's own create carried %q, want alice's token", tokens)
		}
		w.srv.SetABProps(wamock.ABProps{Hash: "h2", Props: map[int]string{tctoken.PropGroupCreateToken: "1"}})
		w.reconnect()
		eventually(t, "prop 11261 applied", func() bool { return w.plugin.Policy().GroupCreateTokens })
		if tokens := create("plugin"); !bytes.Equal(tokenOf(tokens, alice), []byte("alice-token")) || len(tokens) != 1 {
			t.Fatalf("AB prop 11261 on: the create carried %q, want alice's token", tokens)
		}
	})
}

// AB prop 34957 bounds the participants without a token one call carries:
// over it the plugin warns, and still sends.
func TestGroupAddMissingTokensCap(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db, tctoken.WithPropOverride(tctoken.PropGroupAddToken, "1"), tctoken.WithPropOverride(tctoken.PropGroupMaxMissing, "1")).connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		bob := w.srv.AddContact(wamock.ContactOptions{})
		carol := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(alice.LID(), "alice-token")
		info, err := w.plugin.CreateGroup(w.ctx, whatsmeow.ReqCreateGroup{Name: "cap"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.plugin.UpdateGroupParticipants(w.ctx, info.JID, []types.JID{alice.LID(), bob.LID()}, whatsmeow.ParticipantChangeAdd); err != nil {
			t.Fatal(err)
		}
		if n := w.logLines("AB prop 34957"); n != 0 {
			t.Fatalf("one missing token of a limit of one: %d warnings", n)
		}
		added, err := w.plugin.UpdateGroupParticipants(w.ctx, info.JID, []types.JID{bob.LID(), carol.LID()}, whatsmeow.ParticipantChangeAdd)
		if err != nil || len(added) != 2 {
			t.Fatalf("an add over the limit is still sent: %+v, %v", added, err)
		}
		if n := w.logLines("AB prop 34957", `"missing":2`, info.JID.String()); n != 1 {
			t.Fatalf("two missing tokens of a limit of one: %d warnings naming the group, want 1", n)
		}
	})
}
