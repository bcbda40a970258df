package tctoken_test

import (
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/appstate"
	waBinary "go.mau.fi/whatsmeow/binary"
	waServerSync "go.mau.fi/whatsmeow/proto/waServerSync"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/hooks"
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
