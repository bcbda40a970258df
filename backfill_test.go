package tctoken_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/appstate"
	waBinary "go.mau.fi/whatsmeow/binary"
	waServerSync "go.mau.fi/whatsmeow/proto/waServerSync"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/hooks"
	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/sqlstore"
	"github.com/tctoken/tctoken/wamock"
)

// shareKeysAndSync gives the client the phone's app-state keys and waits
// until whatsmeow has synced regular_high with them (the plugin re-reads
// the collection after every such sync, and logs it).
func (w *world) shareKeysAndSync() {
	w.t.Helper()
	// The connect's own backfill found no keys and stood aside.
	w.waitLog(1, "Salt backfill waits for the app-state keys")
	if err := w.srv.Phone().ShareAppStateKeys(w.ctx); err != nil {
		w.t.Fatalf("share app-state keys: %v", err)
	}
	w.waitLog(1, "Re-read regular_high for the NCT salt")
}

func (w *world) backfillRecord() *sqlstore.SaltBackfill {
	w.t.Helper()
	rec, err := sqlstore.New(w.db).ForAccount(*w.device.ID).GetSaltBackfill(w.ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	return rec
}

// isAppStateFetch matches a fetch of regular_high: whatsmeow syncs the
// other collections on its own schedule.
func isAppStateFetch(node *waBinary.Node) bool {
	if !wamock.IsIQ("w:sync:app:state", "set")(node) {
		return false
	}
	sync, _ := node.GetOptionalChildByTag("sync")
	for _, collection := range sync.GetChildren() {
		if name, _ := collection.Attrs["name"].(string); name == string(appstate.WAPatchRegularHigh) {
			return true
		}
	}
	return false
}

// TestSaltBackfillFindsALateSalt: a session that synced regular_high
// before the salt existed never hears of it (no notification comes); the
// backfill on the next connect re-reads the collection and finds it,
// without moving whatsmeow's own sync state.
func TestSaltBackfillFindsALateSalt(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db, tctoken.WithSaltBackfillInterval(time.Hour)).connect()
		w.shareKeysAndSync()
		if err := w.srv.Phone().AppendAppStatePatch(appstate.WAPatchRegularHigh, wamock.AppStateMutation{
			Operation: waServerSync.SyncdMutation_SET,
			Index:     []string{wamock.NctSaltIndex},
			Value:     wamock.NctSaltValue(testSalt),
			Version:   1,
		}); err != nil {
			t.Fatal(err)
		}
		before, _, err := w.cli.Store.AppState.GetAppStateVersion(w.ctx, string(appstate.WAPatchRegularHigh))
		if err != nil {
			t.Fatal(err)
		}
		if w.plugin.HasSalt() {
			t.Fatal("the salt was appended silently; nothing should know it yet")
		}
		mark := w.reconnect()
		eventually(t, "the backfilled salt", w.plugin.HasSalt)
		// The attempt is recorded right after the salt is stored.
		w.waitLog(1, "Salt backfill attempted", `"result":"found"`)
		if rec := w.backfillRecord(); rec == nil || rec.Result != "found" || rec.Attempts != 1 {
			t.Fatalf("backfill record %+v", rec)
		}
		if n := len(filter(w.srv.Since(mark), isAppStateFetch)); n != 1 {
			t.Fatalf("%d regular_high fetches, want 1", n)
		}
		after, _, err := w.cli.Store.AppState.GetAppStateVersion(w.ctx, string(appstate.WAPatchRegularHigh))
		if err != nil || after != before {
			t.Fatalf("whatsmeow's regular_high version moved from %d to %d (%v): the re-read must be read-only", before, after, err)
		}
		explained, err := w.plugin.Explain(w.ctx, w.srv.AddContact(wamock.ContactOptions{}).LID())
		if err != nil || !explained.SaltPresent || explained.SaltSource != "app_state" || explained.Attach != "cstoken" {
			t.Fatalf("Explain after the backfill: %+v %v", explained, err)
		}
		if w.logLines(string(testSalt)) != 0 || w.logLines(hooks.ShortHash(testSalt)) == 0 {
			t.Fatal("the salt is logged as its short hash, never as itself")
		}
	})
}

// TestSaltBackfillOncePerInterval: a phone without a salt costs one
// re-read per interval, however often the client reconnects.
func TestSaltBackfillOncePerInterval(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db, tctoken.WithSaltBackfillInterval(6*time.Hour)).connect()
		w.shareKeysAndSync()

		w.reconnect()
		w.waitLog(1, "Salt backfill attempted", `"result":"absent"`)
		if rec := w.backfillRecord(); rec == nil || rec.Result != "absent" || rec.Attempts != 1 {
			t.Fatalf("first attempt: %+v", rec)
		}
		for i := 1; i <= 2; i++ {
			mark := w.reconnect()
			w.waitLog(i, "Salt backfill not due")
			if n := len(filter(w.srv.Since(mark), isAppStateFetch)); n != 0 {
				t.Fatalf("reconnect %d: %d regular_high fetches within the interval", i, n)
			}
		}
		if rec := w.backfillRecord(); rec.Attempts != 1 {
			t.Fatalf("%d attempts within one interval", rec.Attempts)
		}
		// A restart does not forget it either: the attempt is stored.
		w.restart()
		w.waitLog(3, "Salt backfill not due")
		w.clock.Advance(6 * time.Hour)
		w.reconnect()
		w.waitLog(2, "Salt backfill attempted", `"result":"absent"`)
		if rec := w.backfillRecord(); rec.Attempts != 2 {
			t.Fatalf("%d attempts after the interval, want 2", rec.Attempts)
		}
		if w.plugin.HasSalt() {
			t.Fatal("no salt to find")
		}
	})
}

// slowBackfillStore holds the salt backfill's first step, once armed: a
// backfill that takes long (its fetches of regular_high, say).
type slowBackfillStore struct {
	tctoken.AccountStore
	armed *atomic.Bool
	h     *writeHold
}

func (s slowBackfillStore) GetSaltBackfill(ctx context.Context) (*sqlstore.SaltBackfill, error) {
	if s.armed.Load() {
		s.h.hold()
	}
	return s.AccountStore.GetSaltBackfill(ctx)
}

// TestSendNotBehindSlowBackfill: a send refused with 463 for want of the
// salt set off a backfill that is slow. A second send refused the same way
// does not wait for that backfill: it returns its diagnosis at once. (No
// reconnect sets off the first backfill: whatsmeow 2025-12 races under
// -race when the server drops the connection.)
func TestSendNotBehindSlowBackfill(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		var armed atomic.Bool
		h := newWriteHold()
		w := newWorld(t, db, tctoken.WithSaltBackfillInterval(time.Hour),
			tctoken.WithRecovery(tctoken.Recovery{BackfillSalt: true}),
			tctoken.WithStoreWrapper(func(s tctoken.AccountStore) tctoken.AccountStore {
				return slowBackfillStore{AccountStore: s, armed: &armed, h: h}
			})).connect()
		t.Cleanup(func() { close(h.release) })
		w.shareKeysAndSync()
		w.srv.SetMessageRule(wamock.RequireToken())
		armed.Store(true)
		send := func(to types.JID) <-chan error {
			sent := make(chan error, 1)
			go func() {
				_, err := w.plugin.SendMessage(w.ctx, to, text("hi"))
				sent <- err
			}()
			return sent
		}
		send(w.srv.AddContact(wamock.ContactOptions{}).LID())
		select {
		case <-h.reached:
		case <-time.After(10 * time.Second):
			t.Fatal("the first refused send's backfill never started")
		}
		select {
		case err := <-send(w.srv.AddContact(wamock.ContactOptions{}).LID()):
			var sendErr *tctoken.SendError
			if !errors.As(err, &sendErr) || sendErr.Diagnosis != tctoken.DiagnosisNoSalt {
				t.Fatalf("want a 463 diagnosed no_salt, got %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the refused send waited behind the backfill under way")
		}
	})
}

// TestSaltBackfillFetchesBounded: a server that answers every fetch of
// regular_high with "more patches follow" and none gets a bounded number
// of fetches from the backfill, which then records a failed attempt.
func TestSaltBackfillFetchesBounded(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t), tctoken.WithSaltBackfillInterval(time.Hour),
		tctoken.WithRecovery(tctoken.Recovery{BackfillSalt: true})).connect()
	w.shareKeysAndSync()
	var fetches atomic.Int64
	w.srv.SetIQHandler("w:sync:app:state", func(iq *waBinary.Node) *waBinary.Node {
		if !isAppStateFetch(iq) {
			return nil
		}
		fetches.Add(1)
		return wamock.ResultIQ(iq, waBinary.Node{Tag: "sync", Content: []waBinary.Node{{Tag: "collection", Attrs: waBinary.Attrs{
			"name": string(appstate.WAPatchRegularHigh), "version": 1, "has_more_patches": true,
		}}}})
	})
	w.srv.SetMessageRule(wamock.RequireToken())
	// The refused send sets off the backfill; its context ends an unbounded
	// loop eventually, so that the test fails rather than hangs.
	ctx, cancel := context.WithTimeout(w.ctx, time.Minute)
	defer cancel()
	go func() { _, _ = w.plugin.SendMessage(ctx, w.srv.AddContact(wamock.ContactOptions{}).LID(), text("hi")) }()
	// A deadline, not a measure: an unbounded loop never records an attempt.
	eventuallyWithin(t, 30*time.Second, "the backfill to give up", func() bool {
		return w.logLines("Salt backfill attempted", `"result":"failed"`) > 0
	})
	if n := fetches.Load(); n < 2 || n > 100 {
		t.Fatalf("%d fetches of regular_high by one backfill", n)
	}
}
