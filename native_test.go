package tctoken_test

import (
	"bytes"
	"context"
	"reflect"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types"

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
