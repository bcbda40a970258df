package tctoken_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/wamock"
)

var testSalt = []byte("whatsapp_nct_salt_example")

// wantCSToken is the cstoken computed independently of the plugin.
func wantCSToken(salt []byte, lid types.JID) []byte {
	mac := hmac.New(sha256.New, salt)
	mac.Write([]byte(lid.User + "@lid"))
	return mac.Sum(nil)
}

// setSaltViaAppState has our phone share its app-state keys and set the
// salt in regular_high, then waits for the plugin to know it.
func (w *world) setSaltViaAppState(salt []byte) {
	w.t.Helper()
	w.secret(salt)
	if err := w.srv.Phone().ShareAppStateKeys(w.ctx); err != nil {
		w.t.Fatalf("share app-state keys: %v", err)
	}
	if err := w.srv.Phone().SetNCTSalt(w.ctx, salt); err != nil {
		w.t.Fatalf("set salt: %v", err)
	}
	eventually(w.t, "the salt from app state", w.plugin.HasSalt)
}

// historySalt is a history sync blob's raw field 19 (nctSalt), which this
// whatsmeow's protobufs lack.
func historySalt(salt []byte) []byte {
	raw := protowire.AppendTag(nil, 19, protowire.BytesType)
	return protowire.AppendBytes(raw, salt)
}

func (w *world) sendAndCapture(to types.JID, extra ...whatsmeow.SendRequestExtra) (*waBinary.Node, error) {
	w.t.Helper()
	mark := w.srv.Mark()
	_, err := w.plugin.SendMessage(w.ctx, to, text("hello"), extra...)
	msg := w.srv.WaitForSince(w.t, mark, "message to "+to.String(), wamock.IsMessageTo(to), 5*time.Second)
	return msg, err
}

func TestFirstContactCarriesCSToken(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		w.srv.SetMessageRule(wamock.RequireCSToken(testSalt))
		w.setSaltViaAppState(testSalt)
		alice := w.srv.AddContact(wamock.ContactOptions{})

		msg, err := w.sendAndCapture(alice.LID())
		if err != nil {
			t.Fatalf("the server must accept a message with the right cstoken: %v", err)
		}
		if got := childBytes(msg, "cstoken"); !bytes.Equal(got, wantCSToken(testSalt, alice.LID())) {
			t.Fatalf("cstoken = %x, want %x", got, wantCSToken(testSalt, alice.LID()))
		}
		if _, has := child(msg, "tctoken"); has {
			t.Fatal("never both tokens")
		}

		bob := w.srv.AddContact(wamock.ContactOptions{})
		_, err = w.cli.SendMessage(w.ctx, bob.LID(), text("hello"))
		if w.plugin.NativeTokens() {
			// A whatsmeow that computes cstokens itself does so from the
			// plugin's salt store, so a send past the plugin carries one too.
			if err != nil {
				t.Fatalf("whatsmeow's own cstoken from the plugin's salt must be accepted: %v", err)
			}
			return
		}
		// The same first message through whatsmeow 2025-12 alone is rejected.
		if !errors.Is(err, whatsmeow.ErrServerReturnedError) || !bytes.Contains([]byte(err.Error()), []byte("463")) {
			t.Fatalf("without a token the server must answer 463, got %v", err)
		}
	})
}

func TestReplyCarriesTCTokenNotCSToken(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		w.srv.SetMessageRule(wamock.RequireToken())
		w.setSaltViaAppState(testSalt)
		alice := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(alice.LID(), "alice-token")

		msg, err := w.sendAndCapture(alice.LID())
		if err != nil {
			t.Fatal(err)
		}
		if got := childBytes(msg, "tctoken"); !bytes.Equal(got, []byte("alice-token")) {
			t.Fatalf("tctoken = %q", got)
		}
		if _, has := child(msg, "cstoken"); has {
			t.Fatal("never both tokens")
		}
		if n := countChildren(msg, "tctoken"); n != 1 {
			t.Fatalf("%d tctoken children", n)
		}
	})
}

func TestPNRecipientUsesLIDForCSToken(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		w.setSaltViaAppState(testSalt)
		alice := w.srv.AddContact(wamock.ContactOptions{})
		if err := w.cli.Store.LIDs.PutLIDMapping(w.ctx, alice.LID(), alice.PN()); err != nil {
			t.Fatal(err)
		}
		decision := w.plugin.Decide(w.ctx, alice.PN())
		if decision.Attach != tctoken.AttachCSToken || !bytes.Equal(decision.Token, wantCSToken(testSalt, alice.LID())) {
			t.Fatalf("PN with known LID: %+v", decision)
		}
		mark := w.srv.Mark()
		if _, err := w.plugin.SendMessage(w.ctx, alice.PN(), text("hi")); err != nil {
			t.Fatal(err)
		}
		msg := w.srv.WaitForSince(t, mark, "message to alice", func(n *waBinary.Node) bool {
			return wamock.IsMessageTo(alice.PN())(n) || wamock.IsMessageTo(alice.LID())(n)
		}, 5*time.Second)
		if got := childBytes(msg, "cstoken"); !bytes.Equal(got, wantCSToken(testSalt, alice.LID())) {
			t.Fatalf("cstoken over the LID expected, got %x", got)
		}

		if w.plugin.NativeTokens() {
			t.Skip("whatsmeow after 2025-12 refuses any DM to a phone number whose LID it cannot find, so a PN-only contact cannot be messaged there")
		}
		// A PN whose LID is unknown gets nothing, and the log says why.
		noLID := w.srv.AddContact(wamock.ContactOptions{NoLID: true})
		if d := w.plugin.Decide(w.ctx, noLID.PN()); d.Attach != tctoken.AttachNothing {
			t.Fatalf("PN without LID: %+v", d)
		}
		mark = w.srv.Mark()
		if _, err := w.plugin.SendMessage(w.ctx, noLID.PN(), text("hi")); err != nil {
			t.Fatal(err)
		}
		msg = w.srv.WaitForSince(t, mark, "message to the PN-only contact", wamock.IsMessageTo(noLID.PN()), 5*time.Second)
		if _, has := child(msg, "cstoken"); has {
			t.Fatal("no LID, no cstoken")
		}
		if !bytes.Contains([]byte(w.logs.String()), []byte("LID unknown, no cstoken")) {
			t.Fatal("the debug log must say the LID is unknown")
		}
	})
}

func TestSaltLifecycle(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		w.setSaltViaAppState(testSalt)
		if d := w.plugin.Decide(w.ctx, alice.LID()); d.Attach != tctoken.AttachCSToken {
			t.Fatalf("after SET: %+v", d)
		}
		if err := w.srv.Phone().RemoveNCTSalt(w.ctx); err != nil {
			t.Fatal(err)
		}
		eventually(t, "salt removed", func() bool { return !w.plugin.HasSalt() })

		// A later history-sync salt does not revive it.
		hs := &waHistorySync.HistorySync{SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum()}
		if err := w.srv.Phone().SendHistorySync(w.ctx, hs, historySalt([]byte("history-salt"))); err != nil {
			t.Fatal(err)
		}
		w.waitLog(1, "Ignored the NCT salt", "history_sync")
		if w.plugin.HasSalt() {
			t.Fatal("history sync must not revive a salt app state removed")
		}
		w.restart()
		if w.plugin.HasSalt() {
			t.Fatal("the removal must survive a restart")
		}
	})
}

func TestHistorySaltAloneEnablesCSToken(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		hs := &waHistorySync.HistorySync{SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum()}
		if err := w.srv.Phone().SendHistorySync(w.ctx, hs, historySalt(testSalt)); err != nil {
			t.Fatal(err)
		}
		eventually(t, "history salt", w.plugin.HasSalt)
		if d := w.plugin.Decide(w.ctx, alice.LID()); d.Attach != tctoken.AttachCSToken || !bytes.Equal(d.Token, wantCSToken(testSalt, alice.LID())) {
			t.Fatalf("history salt: %+v", d)
		}
		// It survives a reconnect and a restart.
		w.reconnect()
		if !w.plugin.HasSalt() {
			t.Fatal("salt lost on reconnect")
		}
		w.restart()
		if d := w.plugin.Decide(w.ctx, alice.LID()); d.Attach != tctoken.AttachCSToken {
			t.Fatalf("after restart: %+v", d)
		}
	})
}

func TestHistorySyncTokens(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		bob := w.srv.AddContact(wamock.ContactOptions{})
		group := types.NewJID("120363000000000009", types.GroupServer)
		now := w.clock.Now().Unix()
		tokenTS, senderTS := now-3600, now-60
		// What whatsmeow 2025-12 writes for bob's conversation, here made to
		// land before the plugin sees the history sync at all.
		err := w.cli.Store.PrivacyTokens.PutPrivacyTokens(w.ctx, storeToken(bob.PN(), "bob-history", time.Unix(senderTS, 0)))
		if err != nil {
			t.Fatal(err)
		}
		hs := &waHistorySync.HistorySync{
			SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(),
			Conversations: []*waHistorySync.Conversation{
				{ID: proto.String(alice.PN().String()), TcToken: []byte("alice-history"),
					TcTokenTimestamp: proto.Uint64(uint64(tokenTS)), TcTokenSenderTimestamp: proto.Uint64(uint64(senderTS))},
				{ID: proto.String(bob.PN().String()), TcToken: []byte("bob-history"),
					TcTokenTimestamp: proto.Uint64(uint64(tokenTS)), TcTokenSenderTimestamp: proto.Uint64(uint64(senderTS))},
				{ID: proto.String(group.String()), TcToken: []byte("group-token"), TcTokenTimestamp: proto.Uint64(uint64(tokenTS))},
			},
			PhoneNumberToLidMappings: []*waHistorySync.PhoneNumberToLIDMapping{
				{PnJID: proto.String(alice.PN().String()), LidJID: proto.String(alice.LID().String())},
			},
		}
		if err := w.srv.Phone().SendHistorySync(w.ctx, hs, nil); err != nil {
			t.Fatal(err)
		}
		// whatsmeow writes the token itself (with the sender timestamp as
		// the token timestamp) and the plugin writes it right; whichever
		// lands last, the entry must end up right.
		eventually(t, "history tokens stored right", func() bool {
			e, _ := w.plugin.Get(w.ctx, alice.LID())
			return e != nil && string(e.Token) == "alice-history" && e.TokenTimestamp.Unix() == tokenTS && e.SenderTimestamp.Unix() == senderTS
		})
		w.plugin.Close()
		e, _ := w.plugin.Get(w.ctx, alice.PN())
		if e == nil || e.JID != alice.LID() || e.TokenTimestamp.Unix() != tokenTS || e.SenderTimestamp.Unix() != senderTS {
			t.Fatalf("after all writers: %+v", e)
		}
		b, _ := w.plugin.Get(w.ctx, bob.PN())
		if b == nil || string(b.Token) != "bob-history" || b.TokenTimestamp.Unix() != tokenTS || b.SenderTimestamp.Unix() != senderTS {
			t.Fatalf("whatsmeow's earlier write must be mended: %+v", b)
		}
		if g, _ := w.plugin.Get(w.ctx, group); g != nil {
			t.Fatalf("groups must be skipped, got %+v", g)
		}
	})
}

func TestABPropsGates(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db)
		w.srv.SetABProps(wamock.ABProps{Hash: "h1", Refresh: 3600, Props: map[int]string{
			tctoken.PropTCTokenOn1to1: "0",
			tctoken.PropNCTSend:       "false",
		}})
		w.connect()
		eventually(t, "props applied", func() bool { return !w.plugin.Policy().AttachTCToken })
		w.setSaltViaAppState(testSalt)
		alice := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(alice.LID(), "alice-token")
		msg, err := w.sendAndCapture(alice.LID())
		if err != nil {
			t.Fatal(err)
		}
		if _, has := child(msg, "tctoken"); has {
			t.Error("the tctoken gate is off: no <tctoken>")
		}
		if _, has := child(msg, "cstoken"); has {
			t.Error("the NCT gate is off: no <cstoken>")
		}
	})
}

func TestABPropsDurationDeltaAndRestart(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db)
		w.srv.SetABProps(wamock.ABProps{Hash: "h1", Refresh: 3600, Props: map[int]string{
			tctoken.PropReceiverDuration: "3600",
			tctoken.PropReceiverBuckets:  "2",
			tctoken.PropNCTSend:          "0",
		}})
		w.connect()
		eventually(t, "props applied", func() bool { return w.plugin.Policy().Timing.ReceiverDuration == 3600 })

		// A shorter duration expires tokens sooner: 2 hour-buckets.
		alice := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(alice.LID(), "alice-token")
		if d := w.plugin.Decide(w.ctx, alice.LID()); d.Attach != tctoken.AttachTCToken {
			t.Fatalf("fresh token: %+v", d)
		}
		w.clock.Advance(2 * time.Hour)
		if d := w.plugin.Decide(w.ctx, alice.LID()); d.Attach != tctoken.AttachNothing {
			t.Fatalf("two hours later with 2x1h buckets the token has expired: %+v", d)
		}

		// A delta update changes one prop and keeps the rest; the cached
		// hash is sent.
		w.srv.SetABProps(wamock.ABProps{Hash: "h2", Refresh: 3600, Delta: true, Props: map[int]string{
			tctoken.PropNCTSend: "1",
		}})
		mark := w.reconnect()
		iq := w.srv.WaitForSince(t, mark, "abt IQ after reconnect", wamock.IsIQ("abt", "get"), 10*time.Second)
		props, _ := iq.GetOptionalChildByTag("props")
		if props.Attrs["hash"] != "h1" {
			t.Errorf("the cached hash must be sent, got attrs %v", props.Attrs)
		}
		eventually(t, "delta applied", func() bool { return w.plugin.Policy().AttachCSToken })
		if got := w.plugin.Policy().Timing.ReceiverDuration; got != 3600 {
			t.Fatalf("the delta must keep the other props, duration = %d", got)
		}

		// Props survive a restart, before any fetch: the server now fails.
		w.srv.SetABPropsError(&wamock.ABPropsError{Code: 500, Text: "internal-server-error"})
		w.restart()
		p := w.plugin.Policy()
		if p.Timing.ReceiverDuration != 3600 || p.Timing.ReceiverBuckets != 2 || !p.AttachCSToken {
			t.Fatalf("after restart: %+v", p)
		}
	})
}

func TestPropOverride(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t), tctoken.WithPropOverride(tctoken.PropNCTSend, "0"))
	w.srv.SetABProps(wamock.ABProps{Hash: "h", Props: map[int]string{tctoken.PropNCTSend: "1", tctoken.PropReceiverDuration: "3600"}})
	w.connect()
	eventually(t, "server props applied", func() bool { return w.plugin.Policy().Timing.ReceiverDuration == 3600 })
	if w.plugin.Policy().AttachCSToken {
		t.Fatal("a local override must win over the server")
	}
}

func TestIneligibleRecipientsGetNoToken(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t)).connect()
	w.setSaltViaAppState(testSalt)
	for _, jid := range []types.JID{
		types.NewJID("120363000000000000", types.GroupServer),
		types.StatusBroadcastJID,
		types.NewJID("1234", types.BroadcastServer),
		types.NewJID("120363000000000001", types.NewsletterServer),
		types.NewJID("13135550001", types.DefaultUserServer),
		types.NewJID("0", types.DefaultUserServer),
		w.srv.OwnPN(),
		w.srv.OwnLID(),
	} {
		if d := w.plugin.Decide(w.ctx, jid); d.Attach != tctoken.AttachNothing {
			t.Errorf("%s: %+v", jid, d)
		}
	}
	// Own account through the real send path: no token on the wire.
	mark := w.srv.Mark()
	_, _ = w.plugin.SendMessage(w.ctx, w.srv.OwnPN(), text("note to self"))
	for _, node := range w.srv.Since(mark) {
		if node.Tag == "message" {
			if _, has := child(node, "cstoken"); has {
				t.Error("a message to ourselves must not carry a cstoken")
			}
			if _, has := child(node, "tctoken"); has {
				t.Error("a message to ourselves must not carry a tctoken")
			}
		}
	}
}

func TestCallerAdditionalNodesKept(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t)).connect()
	w.setSaltViaAppState(testSalt)
	alice := w.srv.AddContact(wamock.ContactOptions{})
	nodes := []waBinary.Node{{Tag: "biz", Attrs: waBinary.Attrs{"custom": "1"}}}
	msg, err := w.sendAndCapture(alice.LID(), whatsmeow.SendRequestExtra{AdditionalNodes: &nodes})
	if err != nil {
		t.Fatal(err)
	}
	if n := countChildren(msg, "biz"); n != 1 {
		t.Fatalf("the caller's node arrived %d times", n)
	}
	if n := countChildren(msg, "cstoken"); n != 1 {
		t.Fatalf("%d cstoken children", n)
	}
	if len(nodes) != 1 {
		t.Fatal("the caller's slice must not be modified")
	}
	// A caller that attaches its own token gets no second one.
	own := []waBinary.Node{{Tag: "cstoken", Content: []byte("caller's")}}
	msg, err = w.sendAndCapture(alice.LID(), whatsmeow.SendRequestExtra{AdditionalNodes: &own})
	if err != nil {
		t.Fatal(err)
	}
	if n := countChildren(msg, "cstoken") + countChildren(msg, "tctoken"); n != 1 {
		t.Fatalf("%d token children, want the caller's one", n)
	}
	if got := childBytes(msg, "cstoken"); string(got) != "caller's" {
		t.Fatalf("the cstoken on the wire must be the caller's, got %x", got)
	}
}

// TestSaltAppStatePaths covers each way app state delivers the salt:
// the first sync of regular_high is a full sync (no events.AppState unless
// the bridge opted in), a later SET is incremental (an event), and a REMOVE
// emits nothing at all.
func TestSaltAppStatePaths(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		cstokenWith := func(salt []byte) func() bool {
			return func() bool {
				d := w.plugin.Decide(w.ctx, alice.LID())
				return d.Attach == tctoken.AttachCSToken && bytes.Equal(d.Token, wantCSToken(salt, alice.LID()))
			}
		}
		w.setSaltViaAppState([]byte("salt-full-sync"))
		eventually(t, "salt from the full sync", cstokenWith([]byte("salt-full-sync")))

		if err := w.srv.Phone().SetNCTSalt(w.ctx, []byte("salt-incremental")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "salt from an incremental SET", cstokenWith([]byte("salt-incremental")))

		if err := w.srv.Phone().RemoveNCTSalt(w.ctx); err != nil {
			t.Fatal(err)
		}
		eventually(t, "salt removed", func() bool { return !w.plugin.HasSalt() })

		if err := w.srv.Phone().SetNCTSalt(w.ctx, []byte("salt-again")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "app state may set the salt again", cstokenWith([]byte("salt-again")))
		if w.cli.EmitAppStateEventsOnFullSync {
			t.Fatal("the plugin must not flip EmitAppStateEventsOnFullSync")
		}
		if bytes.Contains([]byte(w.logs.String()), []byte("salt-again")) {
			t.Fatal("the salt must never appear in logs")
		}
	})
}
