package tctoken_test

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/wamock"
)

// Scenarios for a whatsmeow that attaches tokens, computes cstokens and
// issues by itself (commit 33cfac51 and later), run by .ci/whatsmeow-head.
// On whatsmeow 2025-12 the plugin does those steps itself and the other
// tests cover them.

func needNative(t *testing.T, w *world) {
	t.Helper()
	if !w.plugin.NativeTokens() {
		t.Skip("whatsmeow 2025-12 attaches and issues nothing by itself: this scenario is for the newer whatsmeow (.ci/whatsmeow-head)")
	}
}

// needOwnIssuance skips a scenario about the plugin's own issuance queue: a
// whatsmeow that issues after every DM by itself (the newer one) has the
// plugin stand aside, and its issuance is its own.
func needOwnIssuance(t *testing.T, w *world) {
	t.Helper()
	if w.plugin.NativeTokens() {
		t.Skip("the newer whatsmeow issues after every DM by itself; the plugin's issuance queue and its backoff do not run there")
	}
}

// tokenChildren counts <tctoken> and <cstoken> children of a message.
func tokenChildren(msg *waBinary.Node) (tc, cs int) {
	return countChildren(msg, "tctoken"), countChildren(msg, "cstoken")
}

// rawSend sends through whatsmeow alone (a bridge that only called Enable).
func (w *world) rawSend(to types.JID, extra ...whatsmeow.SendRequestExtra) *waBinary.Node {
	w.t.Helper()
	mark := w.srv.Mark()
	if _, err := w.cli.SendMessage(w.ctx, to, text("raw"), extra...); err != nil {
		w.t.Fatalf("send to %s through whatsmeow alone: %v", to, err)
	}
	return w.srv.WaitForSince(w.t, mark, "message to "+to.String(), wamock.IsMessageTo(to), 5*time.Second)
}

// Exactly one token child per message, whoever sends it, never both kinds.
func TestNativeExactlyOneTokenChild(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		needNative(t, w)
		w.setSaltViaAppState(testSalt)
		alice := w.srv.AddContact(wamock.ContactOptions{})
		bob := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(alice.LID(), "alice-token")

		check := func(what string, msg *waBinary.Node, wantTC, wantCS []byte) {
			t.Helper()
			tc, cs := tokenChildren(msg)
			switch {
			case wantTC != nil && (tc != 1 || cs != 0 || !bytes.Equal(childBytes(msg, "tctoken"), wantTC)):
				t.Errorf("%s: %d tctoken, %d cstoken children (tctoken %q); want exactly the tctoken", what, tc, cs, childBytes(msg, "tctoken"))
			case wantCS != nil && (cs != 1 || tc != 0 || !bytes.Equal(childBytes(msg, "cstoken"), wantCS)):
				t.Errorf("%s: %d tctoken, %d cstoken children; want exactly the cstoken", what, tc, cs)
			}
		}
		msg, err := w.sendAndCapture(alice.LID())
		if err != nil {
			t.Fatal(err)
		}
		check("plugin to a contact with a token", msg, []byte("alice-token"), nil)
		msg, err = w.sendAndCapture(bob.LID())
		if err != nil {
			t.Fatal(err)
		}
		check("plugin to a first contact", msg, nil, wantCSToken(testSalt, bob.LID()))
		msg, err = w.sendAndCapture(alice.PN())
		if err != nil {
			t.Fatal(err)
		}
		check("plugin to a contact's phone number", msg, []byte("alice-token"), nil)
		check("whatsmeow alone to a contact with a token", w.rawSend(alice.LID()), []byte("alice-token"), nil)
		check("whatsmeow alone to a first contact", w.rawSend(bob.LID()), nil, wantCSToken(testSalt, bob.LID()))

		// A caller's own token through the plugin: that one, and nothing else.
		own := whatsmeow.SendRequestExtra{AdditionalNodes: &[]waBinary.Node{{Tag: "tctoken", Content: []byte("callers")}}}
		msg, err = w.sendAndCapture(bob.LID(), own)
		if err != nil {
			t.Fatal(err)
		}
		check("plugin with the caller's tctoken", msg, []byte("callers"), nil)

		// Our own account gets neither.
		msg, err = w.sendAndCapture(w.srv.OwnLID())
		if err != nil {
			t.Fatal(err)
		}
		if tc, cs := tokenChildren(msg); tc+cs != 0 {
			t.Errorf("to ourselves: %d tctoken, %d cstoken children; want none", tc, cs)
		}
	})
}

// One issuance per contact per bucket, also across a process restart, for a
// contact who never sent us a token (whatsmeow keeps no row for those).
func TestNativeOneIssuancePerBucketAcrossRestart(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		needNative(t, w)
		carol := w.srv.AddContact(wamock.ContactOptions{})
		mark := w.srv.Mark()
		if _, err := w.plugin.SendMessage(w.ctx, carol.LID(), text("first")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "whatsmeow's issuance", func() bool { return len(w.privacyIQsFor(mark, carol.LID())) == 1 })
		eventually(t, "its sender timestamp recorded", func() bool {
			e, _ := w.plugin.Get(w.ctx, carol.LID())
			return e != nil && e.SenderTimestamp.Unix() > 0
		})
		if _, err := w.plugin.SendMessage(w.ctx, carol.LID(), text("second")); err != nil {
			t.Fatal(err)
		}
		w.restart()
		if _, err := w.plugin.SendMessage(w.ctx, carol.LID(), text("after a restart")); err != nil {
			t.Fatal(err)
		}
		if _, err := w.cli.SendMessage(w.ctx, carol.LID(), text("and through whatsmeow alone")); err != nil {
			t.Fatal(err)
		}
		w.plugin.Close()
		w.srv.WaitIdle(w.deviceNum, time.Second)
		if n := len(w.privacyIQsFor(mark, carol.LID())); n != 1 {
			t.Fatalf("%d privacy IQs for one contact in one bucket across a restart, want 1", n)
		}
	})
}

// The server's window wins over whatsmeow's hard-coded 7 days x 4: with 26
// buckets, a token five weeks old is still attached.
func TestNativeABPropWindowWins(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db)
		w.srv.SetABProps(wamock.ABProps{Hash: "h1", Refresh: 3600, Props: map[int]string{
			tctoken.PropReceiverBuckets: "26",
		}})
		alice := w.srv.AddContact(wamock.ContactOptions{})
		old := storeToken(alice.LID(), "five-weeks-old", w.clock.Now().Add(-5*7*24*time.Hour))
		if err := w.cli.Store.PrivacyTokens.PutPrivacyTokens(w.ctx, old); err != nil {
			t.Fatal(err)
		}
		w.connect()
		needNative(t, w)
		eventually(t, "26 buckets in force", func() bool { return w.plugin.Policy().Timing.ReceiverBuckets == 26 })
		msg, err := w.sendAndCapture(alice.LID())
		if err != nil {
			t.Fatal(err)
		}
		if got := childBytes(msg, "tctoken"); string(got) != "five-weeks-old" {
			t.Fatalf("tctoken %q; the AB-prop window (26 buckets) must keep a 5-week-old token", got)
		}
		if msg = w.rawSend(alice.LID()); string(childBytes(msg, "tctoken")) != "five-weeks-old" {
			t.Fatal("whatsmeow alone must attach it too")
		}
		// And whatsmeow's own prune (fixed 28 days) leaves it.
		if _, err := w.plugin.PruneExpired(w.ctx); err != nil {
			t.Fatal(err)
		}
		if e, _ := w.plugin.Get(w.ctx, alice.LID()); e == nil || string(e.Token) != "five-weeks-old" {
			t.Fatalf("pruned under the AB-prop window: %+v", e)
		}
	})
}

// The salt reaches whatsmeow's cstoken through the plugin: app-state SET,
// REMOVE withdrawing it, and a later history-sync salt not reviving it.
func TestNativeSaltSetRemoveBackfill(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		needNative(t, w)
		alice := w.srv.AddContact(wamock.ContactOptions{})
		w.setSaltViaAppState(testSalt)
		if got := childBytes(w.rawSend(alice.LID()), "cstoken"); !bytes.Equal(got, wantCSToken(testSalt, alice.LID())) {
			t.Fatalf("after SET: cstoken %x", got)
		}
		if err := w.srv.Phone().RemoveNCTSalt(w.ctx); err != nil {
			t.Fatal(err)
		}
		eventually(t, "salt removed", func() bool { return !w.plugin.HasSalt() })
		if _, has := child(w.rawSend(alice.LID()), "cstoken"); has {
			t.Fatal("after REMOVE: a cstoken went out")
		}
		hs := &waHistorySync.HistorySync{SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum()}
		if err := w.srv.Phone().SendHistorySync(w.ctx, hs, historySalt([]byte("history-salt"))); err != nil {
			t.Fatal(err)
		}
		w.waitLog(1, "Ignored the NCT salt", "history_sync")
		if _, has := child(w.rawSend(alice.LID()), "cstoken"); has {
			t.Fatal("a history salt revived a removed one in whatsmeow's cstoken")
		}
	})
}

// A history-sync salt alone backfills whatsmeow's cstoken. (A test of its
// own: a second forEachDB in one test names its subtests "sqlite#01", and a
// '#' in a SQLite file URI cuts the path short, to a file shared with other
// processes.)
func TestNativeSaltHistoryBackfill(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		needNative(t, w)
		alice := w.srv.AddContact(wamock.ContactOptions{})
		hs := &waHistorySync.HistorySync{SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum()}
		if err := w.srv.Phone().SendHistorySync(w.ctx, hs, historySalt(testSalt)); err != nil {
			t.Fatal(err)
		}
		eventually(t, "history backfill", w.plugin.HasSalt)
		if got := childBytes(w.rawSend(alice.LID()), "cstoken"); !bytes.Equal(got, wantCSToken(testSalt, alice.LID())) {
			t.Fatalf("after a history backfill: cstoken %x", got)
		}
	})
}

// putWhatsmeowSalt writes a salt into whatsmeow's own NCT salt store, as if
// whatsmeow had captured it while the plugin was not enabled. The field is
// found by name: whatsmeow 2025-12 has none.
func putWhatsmeowSalt(t *testing.T, w *world, salt []byte) {
	t.Helper()
	saltStore, ok := reflect.ValueOf(w.cli.Store).Elem().FieldByName("NCTSalt").Interface().(interface {
		PutNCTSalt(context.Context, []byte) error
	})
	if !ok {
		t.Fatal("no NCT salt store on this whatsmeow")
	}
	if err := saltStore.PutNCTSalt(w.ctx, salt); err != nil {
		t.Fatal(err)
	}
}

// A salt whatsmeow already holds is imported on the first Enable.
func TestNativeSaltImportedOnEnable(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		needNative(t, w)
		alice := w.srv.AddContact(wamock.ContactOptions{})
		// Closed, the plugin's salt store passes writes to whatsmeow's own.
		w.plugin.Close()
		putWhatsmeowSalt(t, w, testSalt)
		if w.plugin.HasSalt() {
			t.Fatal("the closed plugin must not have taken the salt")
		}
		w.restart()
		eventually(t, "the salt imported from whatsmeow's table", w.plugin.HasSalt)
		if got := childBytes(w.rawSend(alice.LID()), "cstoken"); !bytes.Equal(got, wantCSToken(testSalt, alice.LID())) {
			t.Fatalf("after the import: cstoken %x", got)
		}
	})
}

// putWatch stands in front of the interposer and reports every write whose
// rows carry a sender timestamp: whatsmeow 33cfac51's re-Put after its own
// issuance, the last step of that issuance. With held set (a buffer of
// one), such a write signals there and waits for release before it goes
// through.
type putWatch struct {
	store.PrivacyTokenStore
	senderPuts    chan struct{}
	held, release chan struct{}
}

func (p *putWatch) PutPrivacyTokens(ctx context.Context, tokens ...store.PrivacyToken) error {
	sender := carriesSenderTimestamp(tokens)
	if sender && p.held != nil {
		select {
		case p.held <- struct{}{}:
		default:
		}
		<-p.release
	}
	err := p.PrivacyTokenStore.PutPrivacyTokens(ctx, tokens...)
	if sender {
		p.senderPuts <- struct{}{}
	}
	return err
}

// carriesSenderTimestamp reports whether a row of a write sets
// SenderTimestamp, read by name: whatsmeow 2025-12 has no such field.
func carriesSenderTimestamp(tokens []store.PrivacyToken) bool {
	for _, token := range tokens {
		if field := reflect.ValueOf(token).FieldByName("SenderTimestamp"); field.IsValid() && !field.Interface().(time.Time).IsZero() {
			return true
		}
	}
	return false
}

// newNativeCountingWorld is a world on the newer whatsmeow (skipping on
// 2025-12) whose database statements can be recorded.
func newNativeCountingWorld(t *testing.T, db *dbutil.Database) (*world, *statementLog) {
	t.Helper()
	log := &statementLog{DatabaseLogger: db.Log}
	db.Log = log
	w := newWorld(t, db)
	needNative(t, w)
	return w, log
}

// whatsmeow's own issuance after a first message is recorded once in the
// plugin's table. whatsmeow reads the row right after issuing (the plugin
// records the sender timestamp from whatsmeow's map there, and copies it
// into whatsmeow's table), then writes it back with that sender timestamp:
// the write-back finds it in the plugin's table and does not record it
// there again, but copies it into whatsmeow's table once more, which
// whatsmeow's own table may lack (see nativeSenders).
func TestNativeIssuanceRecordedOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w, log := newNativeCountingWorld(t, db)
		// Before connecting, so that no goroutine of whatsmeow's reads the
		// field meanwhile.
		watch := &putWatch{PrivacyTokenStore: w.cli.Store.PrivacyTokens, senderPuts: make(chan struct{}, 4)}
		w.cli.Store.PrivacyTokens = watch
		w.connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(alice.LID(), "alice-token")
		// Its row in whatsmeow's table too: the sender timestamp has a row
		// to go to, and the token's own write-through is done.
		eventually(t, "alice's token in whatsmeow's table", func() bool { return w.whatsmeowToken(alice.LID()) == "alice-token" })

		mark := w.srv.Mark()
		statements := log.record(func() {
			if _, err := w.plugin.SendMessage(w.ctx, alice.LID(), text("first")); err != nil {
				t.Fatal(err)
			}
			eventually(t, "whatsmeow's issuance", func() bool { return len(w.privacyIQsFor(mark, alice.LID())) == 1 })
			select {
			case <-watch.senderPuts:
			case <-time.After(10 * time.Second):
				t.Fatal("whatsmeow never wrote the row back with its sender timestamp")
			}
		})
		summarize(t, "whatsmeow's issuance", statements)

		iqs := w.privacyIQsFor(mark, alice.LID())
		issued, err := strconv.ParseInt(issuedT(iqs[0], alice.LID()), 10, 64)
		if err != nil {
			t.Fatalf("the issuance's t: %v", err)
		}
		if got := w.senderTS(alice.LID()); got != issued {
			t.Errorf("the plugin's sender timestamp %d, want the issuance's t %d", got, issued)
		}
		if got, ok := w.whatsmeowSenderTS(alice.LID()); !ok || got != issued {
			t.Errorf("whatsmeow's sender timestamp %d (row %v), want the issuance's t %d", got, ok, issued)
		}
		var plugin, whatsmeows int
		for _, s := range statements {
			query := strings.Join(strings.Fields(s.query), " ")
			switch {
			case strings.HasPrefix(query, "INSERT INTO tctoken_tokens (our_jid, their_jid, sender_ts,"):
				plugin++
			case strings.Contains(query, "UPDATE whatsmeow_privacy_tokens SET sender_timestamp"):
				whatsmeows++
			}
		}
		if plugin != 1 || whatsmeows != 2 {
			t.Errorf("one issuance wrote sender timestamps in %d statements to the plugin's table and %d to whatsmeow's; want 1 and 2", plugin, whatsmeows)
		}
	})
}

// copyFailed is the warning writeSenderThrough logs once when its copy into
// whatsmeow's table fails.
const copyFailed = "Failed to copy a sender timestamp into whatsmeow's table"

// recordedAgainAfterFailedCopy is whatsmeow's own issuance to alice, who
// holds a token in both tables, while refuse has whatsmeow's table refuse
// the plugin's copy of the sender timestamp. whatsmeow reads the row right
// after issuing: the plugin records the issuance in its table there and
// fails to copy it into whatsmeow's. watch holds whatsmeow's write-back
// that follows; the test checks that state, lets copies through again and
// releases the write-back, which must then be copied into whatsmeow's
// table again: skipped as already held in the plugin's, it would leave
// whatsmeow's table without the sender timestamp whatsmeow alone writes
// there, and whatsmeow, the plugin removed, would issue again within the
// bucket.
func recordedAgainAfterFailedCopy(t *testing.T, w *world, watch *putWatch, refuse func() (lift func())) {
	t.Helper()
	alice := w.srv.AddContact(wamock.ContactOptions{})
	w.receiveToken(alice.LID(), "alice-token")
	eventually(t, "alice's token in whatsmeow's table", func() bool { return w.whatsmeowToken(alice.LID()) == "alice-token" })
	lift := refuse()
	release := sync.OnceFunc(func() { close(watch.release) })
	// A failing test must not leave whatsmeow's goroutine held.
	defer release()

	mark := w.srv.Mark()
	if _, err := w.plugin.SendMessage(w.ctx, alice.LID(), text("first")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-watch.held:
	case <-time.After(10 * time.Second):
		t.Fatal("whatsmeow never wrote the row back with its sender timestamp")
	}
	iqs := w.privacyIQsFor(mark, alice.LID())
	if len(iqs) != 1 {
		t.Fatalf("%d privacy IQs to alice, want whatsmeow's one issuance", len(iqs))
	}
	issued, err := strconv.ParseInt(issuedT(iqs[0], alice.LID()), 10, 64)
	if err != nil {
		t.Fatalf("the issuance's t: %v", err)
	}
	if got := w.senderTS(alice.LID()); got != issued {
		t.Fatalf("before whatsmeow's write-back, the plugin's sender timestamp is %d, want the issuance's t %d", got, issued)
	}
	if got, _ := w.whatsmeowSenderTS(alice.LID()); got == issued {
		t.Fatal("the copy into whatsmeow's table went through: the fault was not injected")
	}
	if n := w.logLines(`"level":"warn"`, copyFailed); n != 1 {
		t.Fatalf("the failed copy was logged at warn level %d times, want once", n)
	}

	lift()
	release()
	select {
	case <-watch.senderPuts:
	case <-time.After(10 * time.Second):
		t.Fatal("whatsmeow's write-back never returned")
	}
	if got := w.senderTS(alice.LID()); got != issued {
		t.Errorf("the plugin's sender timestamp %d, want the issuance's t %d", got, issued)
	}
	if got, ok := w.whatsmeowSenderTS(alice.LID()); !ok || got != issued {
		t.Errorf("whatsmeow's sender timestamp %d (row %v) after its write-back, want the issuance's t %d, which whatsmeow alone would have written", got, ok, issued)
	}
}

// holdWriteBacks puts a putWatch that holds whatsmeow's write-backs of a
// sender timestamp in front of the client's token store. Before
// connecting, so that no goroutine of whatsmeow's reads the field
// meanwhile.
func holdWriteBacks(w *world) *putWatch {
	watch := &putWatch{PrivacyTokenStore: w.cli.Store.PrivacyTokens, senderPuts: make(chan struct{}, 4),
		held: make(chan struct{}, 1), release: make(chan struct{})}
	w.cli.Store.PrivacyTokens = watch
	return watch
}

// whatsmeow's store on the plugin's database, as bridges build it: the
// copy is one UPDATE of whatsmeow's table, which a trigger refuses.
func TestNativeIssuanceRecordedAgainAfterFailedCopy(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db)
		needNative(t, w)
		watch := holdWriteBacks(w)
		w.connect()
		recordedAgainAfterFailedCopy(t, w, watch, func() func() {
			// The copy is the joined UPDATE only once the plugin knows
			// that whatsmeow's store joins its transactions.
			w.waitLog(1, "Asked whether whatsmeow's token store joins the plugin's transactions", `"joins":true`)
			return refuseWhatsmeowWrites(t, w, "UPDATE")
		})
	})
}

// refusingInner is whatsmeow's own token store, its writes refused while
// failing is set.
type refusingInner struct {
	store.PrivacyTokenStore
	failing atomic.Bool
	refused atomic.Int32
}

func (r *refusingInner) PutPrivacyTokens(ctx context.Context, tokens ...store.PrivacyToken) error {
	if r.failing.Load() {
		r.refused.Add(1)
		return errors.New("injected: whatsmeow's store refuses writes")
	}
	return r.PrivacyTokenStore.PutPrivacyTokens(ctx, tokens...)
}

// whatsmeow's store not its own SQL store on the plugin's database (here
// wrapped; a bridge's own store, or one on another database, alike): the
// copy is a read and a write through that store, whose write fails.
func TestNativeIssuanceRecordedAgainAfterFailedCopyApart(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newBareWorld(t, db, nil)
		inner := &refusingInner{PrivacyTokenStore: w.device.PrivacyTokens}
		w.device.PrivacyTokens = inner
		w.start()
		needNative(t, w)
		watch := holdWriteBacks(w)
		w.connect()
		recordedAgainAfterFailedCopy(t, w, watch, func() func() {
			inner.failing.Store(true)
			return func() { inner.failing.Store(false) }
		})
		if n := inner.refused.Load(); n != 1 {
			t.Errorf("whatsmeow's store refused %d writes, want the one copy of the sender timestamp", n)
		}
	})
}

// whatsmeow 33cfac51's history sync hands over many contacts' sender
// timestamps in one write: those newer than stored are still recorded, in
// one statement per timestamp, and none makes a stored one older. The
// bridge downloads the blob itself with synchronous storage, so that only
// whatsmeow's write counts, not the plugin's own handler of the event
// (which then never runs), racing it.
func TestNativeHistorySenderTimestampsBatched(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w, log := newNativeCountingWorld(t, db)
		w.cli.ManualHistorySyncDownload = true
		notifs := make(chan *waE2E.HistorySyncNotification, 2)
		w.cli.AddEventHandler(func(evt any) {
			if msg, ok := evt.(*events.Message); ok {
				if notif := msg.Message.GetProtocolMessage().GetHistorySyncNotification(); notif != nil {
					notifs <- notif
				}
			}
		})
		w.connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		bob := w.srv.AddContact(wamock.ContactOptions{})
		carol := w.srv.AddContact(wamock.ContactOptions{})
		dave := w.srv.AddContact(wamock.ContactOptions{})
		now := w.clock.Now().Unix()
		older, newer := now-600, now-60
		conv := func(c *wamock.Contact, sender int64) *waHistorySync.Conversation {
			token := []byte(c.LID().User + "-history")
			w.secret(token)
			return &waHistorySync.Conversation{
				ID: proto.String(c.LID().String()), TcToken: token,
				TcTokenTimestamp: proto.Uint64(uint64(now - 3600)), TcTokenSenderTimestamp: proto.Uint64(uint64(sender)),
			}
		}
		// sync delivers a blob and stores it through whatsmeow, and returns
		// the statements of that storage (its context is marked).
		sync := func(convs ...*waHistorySync.Conversation) []statement {
			hs := &waHistorySync.HistorySync{SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(), Conversations: convs}
			if err := w.srv.Phone().SendHistorySync(w.ctx, hs, nil); err != nil {
				t.Fatal(err)
			}
			var notif *waE2E.HistorySyncNotification
			select {
			case notif = <-notifs:
			case <-time.After(10 * time.Second):
				t.Fatal("no history sync notification")
			}
			ctx := context.WithValue(w.ctx, sendMarker{}, true)
			var inStorage []statement
			for _, s := range log.record(func() {
				if _, err := w.cli.DownloadHistorySync(ctx, notif, true); err != nil {
					t.Fatalf("download: %v", err)
				}
			}) {
				if s.inSend {
					inStorage = append(inStorage, s)
				}
			}
			return inStorage
		}
		// alice holds a newer sender timestamp than the next blob brings,
		// bob the same one; carol and dave none.
		sync(conv(alice, newer), conv(bob, older))
		statements := sync(conv(alice, older), conv(bob, older), conv(carol, older), conv(dave, older))
		summarize(t, "whatsmeow's storage of the second blob", statements)

		for c, want := range map[*wamock.Contact]int64{alice: newer, bob: older, carol: older, dave: older} {
			if got := w.senderTS(c.LID()); got != want {
				t.Errorf("%s: sender timestamp %d, want %d", c.LID(), got, want)
			}
			// whatsmeow alone would hold them in its own table too, where
			// it reads them after the plugin is removed.
			if got, ok := w.whatsmeowSenderTS(c.LID()); !ok || got != want {
				t.Errorf("%s: whatsmeow's sender timestamp %d (row %t), want %d", c.LID(), got, ok, want)
			}
		}
		senderWrites := 0
		for _, s := range statements {
			if strings.HasPrefix(strings.Join(strings.Fields(s.query), " "), "INSERT INTO tctoken_tokens (our_jid, their_jid, sender_ts,") {
				senderWrites++
			}
		}
		if senderWrites != 1 {
			t.Errorf("the blob's sender timestamps took %d statements to the plugin's table, want 1", senderWrites)
		}
	})
}
