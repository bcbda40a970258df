package tctoken_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/internal/dbtest"
	tcsqlstore "github.com/tctoken/tctoken/sqlstore"
	"github.com/tctoken/tctoken/wamock"
)

func TestEnableTwiceIsAnError(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t))
	if _, err := tctoken.Enable(w.ctx, w.cli, w.db); !errors.Is(err, tctoken.ErrAlreadyEnabled) {
		t.Fatalf("second Enable: err = %v, want ErrAlreadyEnabled", err)
	}
}

func TestEnableWithPlainSQLDB(t *testing.T) {
	db := dbtest.SQLite(t)
	raw, dialect := dbtest.Raw(db)
	srv := wamock.NewServer(t)
	cli, _ := srv.QuickUnconnectedClient(t)
	plugin, err := tctoken.EnableWithSQL(context.Background(), cli, raw, dialect)
	if err != nil {
		t.Fatalf("EnableWithSQL: %v", err)
	}
	defer plugin.Close()
	if _, err = tctoken.EnableWithSQL(context.Background(), cli, raw, "nosuchdialect"); err == nil {
		t.Fatal("an unknown dialect must be an error")
	}
}

func TestEnableBeforePairing(t *testing.T) {
	db := dbtest.SQLite(t)
	container := dbtest.WhatsmeowContainer(t, db)
	cli := whatsmeow.NewClient(container.NewDevice(), nil)
	plugin, err := tctoken.Enable(context.Background(), cli, db)
	if err != nil {
		t.Fatalf("Enable on an unpaired client: %v", err)
	}
	defer plugin.Close()
	if _, err = plugin.IssueTokens(context.Background(), []types.JID{types.NewJID("15551234567", types.DefaultUserServer)}); err == nil {
		t.Fatal("IssueTokens before pairing must fail")
	}
}

func TestIssueTokensEndToEnd(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		if err := w.cli.Store.LIDs.PutLIDMapping(w.ctx, alice.LID(), alice.PN()); err != nil {
			t.Fatal(err)
		}
		mark := w.srv.Mark()
		received, err := w.plugin.IssueTokens(w.ctx, []types.JID{alice.PN()})
		if err != nil {
			t.Fatalf("IssueTokens: %v", err)
		}
		if len(received) != 0 {
			t.Errorf("an empty reply must give no tokens, got %d", len(received))
		}
		iqs := w.privacyIQsFor(mark, alice.LID())
		if len(iqs) != 1 {
			t.Fatalf("want one privacy IQ addressed to the LID, got %d", len(iqs))
		}
		tok, _ := iqs[0].GetOptionalChildByTag("tokens")
		attrs := tok.GetChildren()[0].Attrs
		if attrs["type"] != "trusted_contact" || attrs["t"] != strconv.FormatInt(w.clock.Now().Unix(), 10) {
			t.Errorf("token attrs = %v", attrs)
		}
		entry, err := w.plugin.Get(w.ctx, alice.PN())
		if err != nil || entry == nil || entry.SenderTimestamp.Unix() != w.clock.Now().Unix() {
			t.Fatalf("sender timestamp not recorded: %+v, %v", entry, err)
		}
		if entry.JID != alice.LID() {
			t.Errorf("entry stored under %s, want the LID %s", entry.JID, alice.LID())
		}
	})
}

func TestIssueTokensStoresTokensInReply(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		now := w.clock.Now().Unix()
		w.srv.SetPrivacyHandler(func(iq *waBinary.Node) *waBinary.Node {
			return wamock.ResultIQ(iq, waBinary.Node{Tag: "tokens", Content: []waBinary.Node{{
				Tag:     "token",
				Attrs:   waBinary.Attrs{"jid": alice.LID(), "t": strconv.FormatInt(now-60, 10), "type": "trusted_contact"},
				Content: []byte("token-from-reply"),
			}}})
		})
		received, err := w.plugin.IssueTokens(w.ctx, []types.JID{alice.LID()})
		if err != nil {
			t.Fatalf("IssueTokens: %v", err)
		}
		if len(received) != 1 || !bytes.Equal(received[0].Token, []byte("token-from-reply")) || received[0].Timestamp != now-60 {
			t.Fatalf("received = %+v", received)
		}
		entry, _ := w.plugin.Get(w.ctx, alice.LID())
		if entry == nil || !bytes.Equal(entry.Token, []byte("token-from-reply")) || entry.SenderTimestamp.Unix() != now {
			t.Fatalf("entry = %+v", entry)
		}
	})
}

func TestIssueTokensServerError(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t)).connect()
	alice := w.srv.AddContact(wamock.ContactOptions{})
	w.srv.SetPrivacyHandler(func(iq *waBinary.Node) *waBinary.Node { return wamock.ErrorIQ(iq, 500, "internal-server-error") })
	_, err := w.plugin.IssueTokens(w.ctx, []types.JID{alice.LID()})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("500")) {
		t.Fatalf("err = %v, want the server's 500", err)
	}
	if entry, _ := w.plugin.Get(w.ctx, alice.LID()); entry != nil {
		t.Fatalf("a failed issuance must record nothing, got %+v", entry)
	}
}

func TestIssueTokensRefusesIneligible(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t)).connect()
	alice := w.srv.AddContact(wamock.ContactOptions{})
	mark := w.srv.Mark()
	for _, bad := range []types.JID{
		types.NewJID("120363000000000000", types.GroupServer),
		types.StatusBroadcastJID,
		types.NewJID("1234", types.BroadcastServer),
		types.NewJID("120363000000000001", types.NewsletterServer),
		types.NewJID("13135550001", types.DefaultUserServer),
		w.srv.OwnPN(),
		w.srv.OwnLID(),
	} {
		if _, err := w.plugin.IssueTokens(w.ctx, []types.JID{alice.LID(), bad}); err == nil {
			t.Errorf("IssueTokens(%s) must be refused", bad)
		}
	}
	if got, _ := w.plugin.IssueTokens(w.ctx, nil); got != nil {
		t.Error("empty input must return nothing")
	}
	for _, node := range w.srv.Since(mark) {
		if wamock.IsIQ("privacy", "")(node) {
			t.Fatalf("nothing may be sent when a JID is refused, got %s", wamock.Describe(node))
		}
	}
}

func TestIssueTokensSplitsLongLists(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t)).connect()
	jids := make([]types.JID, 250)
	for i := range jids {
		jids[i] = types.NewJID(strconv.Itoa(200000000000000+i), types.HiddenUserServer)
	}
	mark := w.srv.Mark()
	if _, err := w.plugin.IssueTokens(w.ctx, jids); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, node := range w.srv.Since(mark) {
		if wamock.IsIQ("privacy", "set")(node) {
			tokens, _ := node.GetOptionalChildByTag("tokens")
			sizes = append(sizes, len(tokens.GetChildren()))
		}
	}
	if len(sizes) != 3 || sizes[0]+sizes[1]+sizes[2] != 250 {
		t.Fatalf("IQ sizes = %v, want 3 IQs covering 250 contacts", sizes)
	}
	all, err := w.plugin.GetAllJIDs(w.ctx)
	if err != nil || len(all) != 0 {
		t.Fatalf("GetAllJIDs lists contacts with tokens from them, not ones we issued to: %v %v", all, err)
	}
}

func TestNotificationStoredUnderLID(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		now := w.clock.Now()

		// from is the LID.
		alice := w.srv.AddContact(wamock.ContactOptions{})
		w.pushToken(alice.LID(), types.EmptyJID, []byte("alice-1"), now)
		if e := w.waitToken(alice.LID(), []byte("alice-1")); e.JID != alice.LID() || e.TokenTimestamp.Unix() != now.Unix() {
			t.Errorf("from LID: entry = %+v", e)
		}

		// from is the PN, the mapping is known.
		bob := w.srv.AddContact(wamock.ContactOptions{})
		if err := w.cli.Store.LIDs.PutLIDMapping(w.ctx, bob.LID(), bob.PN()); err != nil {
			t.Fatal(err)
		}
		w.pushToken(bob.PN(), types.EmptyJID, []byte("bob-1"), now)
		if e := w.waitToken(bob.PN(), []byte("bob-1")); e.JID != bob.LID() {
			t.Errorf("from PN with mapping: stored under %s, want %s", e.JID, bob.LID())
		}

		// from is the PN and sender_lid names the LID. whatsmeow 2025-12
		// hands the store only `from` (see the README), so this holds
		// because the mapping is known, as it is once we have messaged.
		carol := w.srv.AddContact(wamock.ContactOptions{})
		if err := w.cli.Store.LIDs.PutLIDMapping(w.ctx, carol.LID(), carol.PN()); err != nil {
			t.Fatal(err)
		}
		w.pushToken(carol.PN(), carol.LID(), []byte("carol-1"), now)
		if e := w.waitToken(carol.LID(), []byte("carol-1")); e.JID != carol.LID() {
			t.Errorf("with sender_lid: stored under %s", e.JID)
		}

		// An older token after a newer one changes nothing.
		w.pushToken(alice.LID(), types.EmptyJID, []byte("alice-old"), now.Add(-time.Hour))
		w.pushToken(alice.LID(), types.EmptyJID, []byte("alice-2"), now.Add(time.Minute))
		e := w.waitToken(alice.LID(), []byte("alice-2"))
		if e.TokenTimestamp.Unix() != now.Add(time.Minute).Unix() {
			t.Errorf("newer token: ts = %v", e.TokenTimestamp)
		}

		if w.plugin.NativeTokens() {
			t.Skip("whatsmeow after 2025-12 no longer checks a privacy_token's jid and the store is not told it: a token for another account cannot be told apart there")
		}
		// A token for another account is ignored (whatsmeow drops it; the
		// store must not see it).
		// Had it been stored, its later t would keep dave-1 out.
		dave := w.srv.AddContact(wamock.ContactOptions{})
		other := types.NewJID("999999999999999", types.HiddenUserServer)
		if err := w.srv.PushPrivacyToken(dave.LID(), types.EmptyJID, other, []byte("not-for-us"), now.Add(time.Minute).Unix()); err != nil {
			t.Fatal(err)
		}
		w.pushToken(dave.LID(), types.EmptyJID, []byte("dave-1"), now)
		if e := w.waitToken(dave.LID(), []byte("dave-1")); e.TokenTimestamp.Unix() != now.Unix() {
			t.Fatalf("dave: %+v", e)
		}
	})
}

func TestNotificationRejectsBadTokens(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t)).connect()
	alice := w.srv.AddContact(wamock.ContactOptions{})
	now := w.clock.Now()
	w.pushToken(alice.LID(), types.EmptyJID, []byte("good"), now)
	w.waitToken(alice.LID(), []byte("good"))
	w.pushToken(alice.LID(), types.EmptyJID, make([]byte, 5000), now.Add(time.Minute))
	w.pushToken(alice.LID(), types.EmptyJID, []byte("from-the-future"), now.Add(72*time.Hour))
	w.pushToken(alice.LID(), types.EmptyJID, []byte("marker"), now.Add(time.Second))
	w.waitToken(alice.LID(), []byte("marker"))
	logs := w.logs.String()
	for _, want := range []string{"over the 1024-byte limit", "in the future"} {
		if !bytes.Contains([]byte(logs), []byte(want)) {
			t.Errorf("logs do not say %q", want)
		}
	}
	if bytes.Contains([]byte(logs), []byte("from-the-future")) {
		t.Error("token bytes must never appear in logs")
	}
}

func TestTCTokenAttachedUntilExpiry(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(alice.LID(), "alice-token")

		// Through whatsmeow directly: Enable alone attaches it.
		mark := w.srv.Mark()
		if _, err := w.cli.SendMessage(w.ctx, alice.LID(), text("hi")); err != nil {
			t.Fatal(err)
		}
		msg := w.srv.WaitForSince(t, mark, "message to alice", wamock.IsMessageTo(alice.LID()), 5*time.Second)
		if got := childBytes(msg, "tctoken"); !bytes.Equal(got, []byte("alice-token")) {
			t.Fatalf("tctoken = %q, want the stored bytes", got)
		}

		// 4 buckets later it has expired: nothing is attached.
		w.clock.Advance(4 * week)
		mark = w.srv.Mark()
		if _, err := w.cli.SendMessage(w.ctx, alice.LID(), text("still there?")); err != nil {
			t.Fatal(err)
		}
		msg = w.srv.WaitForSince(t, mark, "message to alice", wamock.IsMessageTo(alice.LID()), 5*time.Second)
		if _, has := child(msg, "tctoken"); has {
			t.Fatal("an expired token must not be attached")
		}
	})
}

func TestPostSendIssuance(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		mark := w.srv.Mark()
		if _, err := w.plugin.SendMessage(w.ctx, alice.LID(), text("first")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "issuance after the first send", func() bool { return len(w.privacyIQsFor(mark, alice.LID())) == 1 })
		// whatsmeow after 2025-12 issues by itself, at its own (real) clock;
		// the plugin records that issuance.
		issuedAt := w.clock.Now().Unix()
		if w.plugin.NativeTokens() {
			issuedAt = 0
		}
		eventually(t, "sender timestamp recorded", func() bool {
			e, _ := w.plugin.Get(w.ctx, alice.LID())
			return e != nil && e.SenderTimestamp.Unix() > 0 && (issuedAt == 0 || e.SenderTimestamp.Unix() == issuedAt)
		})

		// Same bucket: no second issuance.
		if _, err := w.plugin.SendMessage(w.ctx, alice.LID(), text("second")); err != nil {
			t.Fatal(err)
		}
		w.plugin.Close() // waits for background issuance, if any started
		if n := len(w.privacyIQsFor(mark, alice.LID())); n != 1 {
			t.Fatalf("want 1 privacy IQ in the bucket, got %d", n)
		}
	})
}

func TestPostSendIssuanceConcurrent(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		if w.plugin.NativeTokens() {
			t.Skip("whatsmeow after 2025-12 issues after each DM itself, on the real clock (this test moves the plugin's) and with no in-flight deduplication")
		}
		bob := w.srv.AddContact(wamock.ContactOptions{})
		mark := w.srv.Mark()
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := w.plugin.SendMessage(w.ctx, bob.LID(), text("hello "+strconv.Itoa(i))); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		eventually(t, "issuance", func() bool { return len(w.privacyIQsFor(mark, bob.LID())) >= 1 })

		// A rolled-over bucket makes one more.
		w.clock.Advance(week)
		if _, err := w.plugin.SendMessage(w.ctx, bob.LID(), text("a week later")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "second issuance", func() bool { return len(w.privacyIQsFor(mark, bob.LID())) >= 2 })
		w.plugin.Close()
		if n := len(w.privacyIQsFor(mark, bob.LID())); n != 2 {
			t.Fatalf("want exactly 2 privacy IQs (20 concurrent sends, then a new bucket), got %d", n)
		}
	})
}

func TestPostSendIssuanceServerError(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t)).connect()
	alice := w.srv.AddContact(wamock.ContactOptions{})
	w.srv.SetPrivacyHandler(func(iq *waBinary.Node) *waBinary.Node { return wamock.ErrorIQ(iq, 500, "internal-server-error") })
	mark := w.srv.Mark()
	if _, err := w.plugin.SendMessage(w.ctx, alice.LID(), text("hi")); err != nil {
		t.Fatalf("the send must succeed whatever issuance does: %v", err)
	}
	eventually(t, "issuance attempt", func() bool { return len(w.privacyIQsFor(mark, alice.LID())) == 1 })
	w.plugin.Close()
	if e, _ := w.plugin.Get(w.ctx, alice.LID()); e != nil && !e.SenderTimestamp.IsZero() {
		t.Fatalf("a failed issuance must leave the sender timestamp unchanged, got %v", e.SenderTimestamp)
	}
	if len(w.srv.MessagesTo(alice.LID())) != 1 {
		t.Fatal("the message must have been delivered")
	}
}

func TestIssuanceOnReceiptWithEnableAlone(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t)).connect()
	alice := w.srv.AddContact(wamock.ContactOptions{})
	mark := w.srv.Mark()
	resp, err := w.cli.SendMessage(w.ctx, alice.LID(), text("hi"))
	if err != nil {
		t.Fatal(err)
	}
	receipt, err := alice.SendReceipt(w.ctx, wamock.ReceiptDelivered, resp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.srv.WaitHandled(w.ctx, receipt); err != nil {
		t.Fatal(err)
	}
	eventually(t, "issuance after the delivery receipt", func() bool { return len(w.privacyIQsFor(mark, alice.LID())) == 1 })
}

// TestGroupTrafficIssuesNothing: a group message carries no token, and
// neither sending it nor the members' receipts for it issue one; a 1:1
// receipt afterwards still does.
func TestGroupTrafficIssuesNothing(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t)).connect()
	w.setSaltViaAppState(testSalt) // so that a 1:1 message would carry a cstoken
	alice := w.srv.AddContact(wamock.ContactOptions{})
	bob := w.srv.AddContact(wamock.ContactOptions{})
	group := w.srv.AddGroup(wamock.GroupOptions{Members: []*wamock.Contact{alice}})
	alice.SetAutoReceipts(wamock.ReceiptDelivered, wamock.ReceiptRead)
	mark := w.srv.Mark()
	resp, err := w.plugin.SendMessage(w.ctx, group.JID(), text("hi all"))
	if err != nil {
		t.Fatal(err)
	}
	if ack, ok := w.srv.AckFor(resp.ID); !ok || !ack.Accepted() {
		t.Fatalf("group message ack %+v", ack)
	}
	msg := w.srv.MessageByID(resp.ID)
	if wamock.MessageToken(msg) != nil || wamock.MessageCSToken(msg) != nil {
		t.Fatal("a group message must carry no token")
	}
	if len(alice.Messages()) != 1 {
		t.Fatal("alice must have decrypted the group message")
	}
	if err := w.srv.WaitHandled(w.ctx, resp.ID); err != nil { // her receipts
		t.Fatal(err)
	}
	direct, err := w.cli.SendMessage(w.ctx, bob.LID(), text("hi bob"))
	if err != nil {
		t.Fatal(err)
	}
	receipt, err := bob.SendReceipt(w.ctx, wamock.ReceiptDelivered, direct.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.srv.WaitHandled(w.ctx, receipt); err != nil {
		t.Fatal(err)
	}
	eventually(t, "issuance to bob after his receipt", func() bool { return len(w.privacyIQsFor(mark, bob.LID())) == 1 })
	for _, jid := range []types.JID{group.JID(), alice.LID(), alice.PN()} {
		if n := len(w.privacyIQsFor(mark, jid)); n != 0 {
			t.Errorf("%d issuances to %s from group traffic", n, jid)
		}
	}
}

func TestReissueOnIdentityChange(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		issuedAt := w.clock.Now().Unix()
		if _, err := w.plugin.IssueTokens(w.ctx, []types.JID{alice.LID()}); err != nil {
			t.Fatal(err)
		}
		w.clock.Advance(2 * 24 * time.Hour)
		// Alice reinstalls and writes: whatsmeow hits its untrusted-identity
		// path and emits an implicit IdentityChange.
		if err := alice.SendText(w.ctx, "hello before"); err != nil {
			t.Fatal(err)
		}
		alice.Reinstall()
		mark := w.srv.Mark()
		if err := alice.SendText(w.ctx, "I reinstalled"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "reissue after identity change", func() bool { return len(w.privacyIQsFor(mark, alice.LID())) == 1 })
		if got := issuedT(w.privacyIQsFor(mark, alice.LID())[0], alice.LID()); got != strconv.FormatInt(issuedAt, 10) {
			t.Fatalf("reissue t = %s, want the original %d", got, issuedAt)
		}

		// Never issued to bob: his reinstall sends nothing.
		bob := w.srv.AddContact(wamock.ContactOptions{})
		if err := bob.SendText(w.ctx, "hi"); err != nil {
			t.Fatal(err)
		}
		bob.Reinstall()
		mark = w.srv.Mark()
		if err := bob.SendText(w.ctx, "reinstalled"); err != nil {
			t.Fatal(err)
		}
		// The implicit change is decided before the explicit one arrives:
		// two reissues of one contact that overlap are one decision.
		w.waitLog(1, `"trigger":"identity change"`, `"contact":"`+bob.LID().String()+`"`, "No issuance due")
		if err := bob.NotifyIdentityChange(); err != nil {
			t.Fatal(err)
		}
		// Expired on the sender side: carol's reinstall sends nothing either.
		carol := w.srv.AddContact(wamock.ContactOptions{})
		if _, err := w.plugin.IssueTokens(w.ctx, []types.JID{carol.LID()}); err != nil {
			t.Fatal(err)
		}
		w.clock.Advance(5 * week)
		mark2 := w.srv.Mark()
		if err := carol.NotifyIdentityChange(); err != nil {
			t.Fatal(err)
		}
		// Bob's implicit and explicit changes and carol's: three decisions.
		w.waitLog(3, `"trigger":"identity change"`, "No issuance due")
		w.plugin.Close()
		if n := len(w.privacyIQsFor(mark, bob.LID())); n != 0 {
			t.Errorf("no issuance to bob means no reissue, got %d IQs", n)
		}
		if n := len(w.privacyIQsFor(mark2, carol.LID())); n != 0 {
			t.Errorf("an issuance expired on the sender side must not be repeated, got %d IQs", n)
		}
	})
}

func TestPruneOnConnect(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db)
		now := w.clock.Now()
		old := types.NewJID("300000000000001", types.HiddenUserServer)
		fresh := types.NewJID("300000000000002", types.HiddenUserServer)
		err := w.cli.Store.PrivacyTokens.PutPrivacyTokens(w.ctx,
			storeToken(old, "old", now.Add(-5*week)),
			storeToken(fresh, "fresh", now.Add(-time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		w.connect()
		eventually(t, "pruning on connect", func() bool {
			e, _ := w.plugin.Get(w.ctx, old)
			return e == nil
		})
		if e, _ := w.plugin.Get(w.ctx, fresh); e == nil || string(e.Token) != "fresh" {
			t.Fatalf("the fresh token must stay, got %+v", e)
		}
		eventually(t, "prune count logged", func() bool {
			return bytes.Contains([]byte(w.logs.String()), []byte(`"removed":1`))
		})
	})
}

func TestPruneExpired(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db)
		now := w.clock.Now()
		alice := types.NewJID("300000000000003", types.HiddenUserServer)
		if err := w.cli.Store.PrivacyTokens.PutPrivacyTokens(w.ctx, storeToken(alice, "a", now)); err != nil {
			t.Fatal(err)
		}
		if n, err := w.plugin.PruneExpired(w.ctx); err != nil || n != 0 {
			t.Fatalf("nothing is expired yet: %d %v", n, err)
		}
		w.clock.Advance(4 * week)
		if n, err := w.plugin.PruneExpired(w.ctx); err != nil || n != 1 {
			t.Fatalf("PruneExpired = %d, %v; want 1", n, err)
		}
		if all, _ := w.plugin.GetAllJIDs(w.ctx); len(all) != 0 {
			t.Fatalf("GetAllJIDs after pruning = %v", all)
		}
	})
}

func TestPresenceResubscribedWithNewToken(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		bob := w.srv.AddContact(wamock.ContactOptions{})
		isSubscribe := func(to types.JID) func(*waBinary.Node) bool {
			return func(n *waBinary.Node) bool {
				j, _ := n.Attrs["to"].(types.JID)
				return n.Tag == "presence" && n.Attrs["type"] == "subscribe" && j == to
			}
		}
		mark := w.srv.Mark()
		if err := w.plugin.SubscribePresence(w.ctx, alice.LID()); err != nil {
			t.Fatal(err)
		}
		w.srv.WaitForSince(t, mark, "first presence subscription", isSubscribe(alice.LID()), 5*time.Second)
		mark = w.srv.Mark()
		w.pushToken(alice.LID(), types.EmptyJID, []byte("alice-new"), w.clock.Now())
		node := w.srv.WaitForSince(t, mark, "presence re-subscription to alice", isSubscribe(alice.LID()), 5*time.Second)
		if got := childBytes(node, "tctoken"); !bytes.Equal(got, []byte("alice-new")) {
			t.Fatalf("re-subscription tctoken = %q", got)
		}
		mark = w.srv.Mark()
		w.receiveToken(bob.LID(), "bob-new")
		w.plugin.Close()
		for _, n := range w.srv.Since(mark) {
			if isSubscribe(bob.LID())(n) {
				t.Fatal("no subscription to bob, so none may be sent")
			}
		}
	})
}

// TestSendSurvivesPluginDatabaseFailure: with the plugin's table gone, sends
// still go out (without a token) and the failure is logged once, not per send.
func TestSendSurvivesPluginDatabaseFailure(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		bob := w.srv.AddContact(wamock.ContactOptions{})
		carol := w.srv.AddContact(wamock.ContactOptions{})
		w.plugin.Decide(w.ctx, carol.LID()) // cached before the failure
		if _, err := db.Exec(w.ctx, "DROP TABLE tctoken_tokens"); err != nil {
			t.Fatal(err)
		}
		// Cached and uncached reads alternate: a cache hit must not make
		// the failure look mended and log it again.
		for _, to := range []types.JID{bob.LID(), carol.LID(), bob.LID(), carol.LID()} {
			if _, err := w.cli.SendMessage(w.ctx, to, text("through whatsmeow")); err != nil {
				t.Fatalf("whatsmeow's own send through the interposer: %v", err)
			}
		}
		for _, to := range []types.JID{alice.LID(), bob.LID(), alice.LID()} {
			mark := w.srv.Mark()
			if _, err := w.plugin.SendMessage(w.ctx, to, text("still works")); err != nil {
				t.Fatalf("send to %s with the plugin's table gone: %v", to, err)
			}
			msg := w.srv.WaitForSince(t, mark, "message", wamock.IsMessageTo(to), 5*time.Second)
			if _, has := child(msg, "tctoken"); has {
				t.Fatal("no token can be read, none may be attached")
			}
		}
		w.plugin.Close()
		if n := w.logLines(`"level":"warn"`, `"kind":"read"`); n != 1 {
			t.Fatalf("the read failure must be a warning once, got %d", n)
		}
		if n := w.logLines(`"level":"debug"`, `"kind":"read"`); n == 0 {
			t.Fatal("later failures must still be logged, at debug level")
		}
	})
}

// TestScheduleWhileConnected: while connected, the plugin prunes again once
// a day and fetches AB props again when their refresh interval passes.
func TestScheduleWhileConnected(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db)
		w.srv.SetABProps(wamock.ABProps{Hash: "h1", Refresh: 3600, Props: map[int]string{tctoken.PropNCTSend: "1"}})
		w.connect()
		w.waitLog(1, "Pruned expired privacy tokens", `"trigger":"connect"`)
		alice := w.srv.AddContact(wamock.ContactOptions{})
		// Valid now, expired two days from now.
		w.pushToken(alice.LID(), types.EmptyJID, []byte("alice-old"), w.clock.Now().Add(-4*week+36*time.Hour))
		w.waitToken(alice.LID(), []byte("alice-old"))
		fetches := len(w.srv.ABPropsIQs())

		w.clock.Advance(2 * time.Hour)
		eventually(t, "props fetched again after their refresh interval", func() bool { return len(w.srv.ABPropsIQs()) > fetches })
		if w.logLines(`"trigger":"daily"`) != 0 {
			t.Fatal("no daily prune before a day has passed")
		}

		w.clock.Advance(2 * 24 * time.Hour)
		w.waitLog(1, "Pruned expired privacy tokens", `"trigger":"daily"`, `"removed":1`)
		if e, _ := w.plugin.Get(w.ctx, alice.LID()); e != nil && e.Token != nil {
			t.Fatalf("the daily prune must remove the expired token, got %+v", e)
		}
	})
}

// TestLogoutForgetsTheAccount: a logout deletes the plugin's data for the
// account and nothing else.
func TestLogoutForgetsTheAccount(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(alice.LID(), "alice")
		other := tcsqlstore.New(db).ForAccount(types.NewADJID("15559999999", 0, 3))
		if _, err := other.PutTokens(w.ctx, tcsqlstore.TokenWrite{Contact: alice.LID(), Token: []byte("x"), TokenTS: 1}); err != nil {
			t.Fatal(err)
		}
		ours := tcsqlstore.New(db).ForAccount(*w.device.ID)

		// What the server sends when the phone unlinks this device.
		removed := waBinary.Node{Tag: "stream:error", Attrs: waBinary.Attrs{"code": "401"},
			Content: []waBinary.Node{{Tag: "conflict", Attrs: waBinary.Attrs{"type": "device_removed"}}}}
		if err := w.srv.Push(removed); err != nil {
			t.Fatal(err)
		}
		eventually(t, "our rows deleted after logout", func() bool {
			contacts, err := ours.Contacts(w.ctx)
			return err == nil && len(contacts) == 0
		})
		if contacts, _ := other.Contacts(w.ctx); len(contacts) != 1 {
			t.Fatalf("another account's rows must stay, got %v", contacts)
		}
	})
}

// TestEnableBeforePairingThenPair: the plugin enabled on a client that is
// not paired yet binds to the account when pairing succeeds.
func TestEnableBeforePairingThenPair(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		srv := wamock.NewServer(t)
		container := dbtest.WhatsmeowContainer(t, db)
		cli := srv.NewClient(container.NewDevice(), nil)
		plugin, err := tctoken.Enable(context.Background(), cli, db)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			plugin.Close()
			srv.WaitIdle(cli.Store.ID.Device, time.Second)
			cli.Disconnect()
		})
		srv.ConnectAndPair(t, cli)
		alice := srv.AddContact(wamock.ContactOptions{})
		mark := srv.Mark()
		if _, err := plugin.IssueTokens(context.Background(), []types.JID{alice.LID()}); err != nil {
			t.Fatalf("IssueTokens after pairing: %v", err)
		}
		if n := len(srv.Since(mark)); n == 0 {
			t.Fatal("the privacy IQ must reach the server")
		}
		eventually(t, "AB props fetched on the first connect", func() bool { return len(srv.ABPropsIQs()) > 0 })
		entry, err := plugin.Get(context.Background(), alice.LID())
		if err != nil || entry == nil || entry.SenderTimestamp.IsZero() {
			t.Fatalf("after pairing: %+v, %v", entry, err)
		}
		// Pairing saved the device, which gave it whatsmeow's own stores:
		// the plugin must be back in front of them. A token alice sends
		// now reaches the plugin's tables, and a plain send carries it.
		if err := srv.PushPrivacyToken(alice.LID(), types.EmptyJID, srv.OwnLID(), []byte("after-pairing"), time.Now().Unix()); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the token stored through the plugin", func() bool {
			e, _ := plugin.Get(context.Background(), alice.LID())
			return e != nil && string(e.Token) == "after-pairing"
		})
		mark = srv.Mark()
		if _, err := cli.SendMessage(context.Background(), alice.LID(), text("hi")); err != nil {
			t.Fatal(err)
		}
		msg := srv.WaitForSince(t, mark, "message to alice", wamock.IsMessageTo(alice.LID()), 5*time.Second)
		if got := childBytes(msg, "tctoken"); string(got) != "after-pairing" {
			t.Fatalf("tctoken %q after pairing, want after-pairing", got)
		}
	})
}

// TestEnableOnConnectedClient: a bridge that enables the plugin after
// connecting still gets the connect-time work (AB props, pruning).
func TestEnableOnConnectedClient(t *testing.T) {
	srv := wamock.NewServer(t)
	db := dbtest.SQLite(t)
	device, err := srv.NewDevice(context.Background(), dbtest.WhatsmeowContainer(t, db))
	if err != nil {
		t.Fatal(err)
	}
	cli := srv.NewClient(device, nil)
	srv.ConnectAndWait(t, cli)
	mark := srv.Mark()
	plugin, err := tctoken.Enable(context.Background(), cli, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		plugin.Close()
		srv.WaitIdle(device.ID.Device, time.Second)
		cli.Disconnect()
	})
	srv.WaitForSince(t, mark, "AB props fetch after a late Enable", wamock.IsIQ("abt", "get"), 5*time.Second)
}
