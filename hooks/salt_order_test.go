package hooks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	waServerSync "go.mau.fi/whatsmeow/proto/waServerSync"
	"go.mau.fi/whatsmeow/proto/waSyncAction"
	"google.golang.org/protobuf/proto"

	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/sqlstore"
	"github.com/tctoken/tctoken/wamock"
)

// saltWrites records the app-state salts written to the store, in order,
// and counts the app-state removals.
type saltWrites struct {
	AccountStore
	f *saltFixture
}

func (s saltWrites) SetAppStateSalt(ctx context.Context, salt []byte) error {
	err := s.AccountStore.SetAppStateSalt(ctx, salt)
	if err == nil {
		s.f.mu.Lock()
		s.f.written = append(s.f.written, bytes.Clone(salt))
		s.f.mu.Unlock()
	}
	return err
}

func (s saltWrites) RemoveAppStateSalt(ctx context.Context) error {
	err := s.AccountStore.RemoveAppStateSalt(ctx)
	if err == nil {
		s.f.mu.Lock()
		s.f.removed++
		s.f.mu.Unlock()
	}
	return err
}

// saltFixture is a plugin on a connected whatsmeow client, with the salt
// writes recorded and the plugin's log kept (and shown if the test fails).
type saltFixture struct {
	srv  *wamock.Server
	c    *Core
	logs *lockedBuffer

	mu      sync.Mutex
	written [][]byte // app-state salts written, in order
	removed int      // app-state removals written
}

// newSaltFixture connects a client with the plugin attached. seams sets
// the Core's test hooks before anything runs that reads them.
func newSaltFixture(t *testing.T, db *dbutil.Database, seams func(c *Core)) *saltFixture {
	t.Helper()
	ctx := context.Background()
	f := &saltFixture{srv: wamock.NewServer(t), logs: &lockedBuffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("plugin log:\n%s", f.logs.String())
		}
	})
	device, err := f.srv.NewDevice(ctx, dbtest.WhatsmeowContainer(t, db))
	if err != nil {
		t.Fatal(err)
	}
	cli := f.srv.NewClient(device, nil)
	plugin := sqlstore.New(db)
	if err := plugin.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	f.c = New(cli, plugin, Config{Log: zerolog.New(f.logs).Level(zerolog.DebugLevel), WrapStore: func(s AccountStore) AccountStore {
		return saltWrites{AccountStore: s, f: f}
	}})
	if seams != nil {
		seams(f.c)
	}
	if err := f.c.Attach(ctx); err != nil {
		t.Fatal(err)
	}
	f.srv.ConnectAndWait(t, cli)
	t.Cleanup(func() {
		f.c.Close()
		f.srv.WaitIdle(device.ID.Device, time.Second)
		cli.Disconnect()
	})
	return f
}

// shareKeys gives the client the phone's app-state keys and waits until
// the plugin has re-read regular_high after whatsmeow's sync with them.
// The connect's own salt backfill re-reads regular_high too, and logs the
// same line, if the keys are there when it runs: it must first have found
// none and stood aside, so that the line waited for is the sync's.
func (f *saltFixture) shareKeys(t *testing.T) {
	t.Helper()
	waitFor(t, "the connect's backfill to stand aside", func() bool {
		return strings.Contains(f.logs.String(), "Salt backfill waits for the app-state keys")
	})
	if err := f.srv.Phone().ShareAppStateKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the sync with the app-state keys", func() bool {
		return strings.Contains(f.logs.String(), "Re-read regular_high for the NCT salt")
	})
}

// wasWritten reports whether salt was ever written, and whether it was the
// last salt written.
func (f *saltFixture) wasWritten(salt []byte) (ever, last bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.written)
	return slices.ContainsFunc(f.written, func(w []byte) bool { return bytes.Equal(w, salt) }),
		n > 0 && bytes.Equal(f.written[n-1], salt)
}

// sendFirstContact sends to a new contact and checks that the message
// carries the cstoken of salt.
func (f *saltFixture) sendFirstContact(t *testing.T, salt []byte) {
	t.Helper()
	if got, want := f.sendToNewContact(t, salt); !bytes.Equal(got, want) {
		t.Fatalf("cstoken %x, want the salt's %x", got, want)
	}
}

// sendFirstContactWithout sends to a new contact and checks that the
// message carries no cstoken computed from salt.
func (f *saltFixture) sendFirstContactWithout(t *testing.T, salt []byte) {
	t.Helper()
	if got, want := f.sendToNewContact(t, salt); got != nil && bytes.Equal(got, want) {
		t.Fatal("a first contact carries a cstoken from the salt the account removed")
	}
}

// sendToNewContact sends to a new contact and returns the cstoken the
// message carried (nil for none) and the one salt gives that contact.
func (f *saltFixture) sendToNewContact(t *testing.T, salt []byte) (got, want []byte) {
	t.Helper()
	alice := f.srv.AddContact(wamock.ContactOptions{})
	mark := f.srv.Mark()
	if _, err := f.c.SendMessage(context.Background(), alice.LID(), &waE2E.Message{Conversation: proto.String("hi")}); err != nil {
		t.Fatal(err)
	}
	msg := f.srv.WaitForSince(t, mark, "message to alice", wamock.IsMessageTo(alice.LID()), 5*time.Second)
	if cstoken, ok := msg.GetOptionalChildByTag("cstoken"); ok {
		got, _ = cstoken.Content.([]byte)
	}
	mac := hmac.New(sha256.New, salt)
	mac.Write([]byte(alice.LID().User + "@lid"))
	return got, mac.Sum(nil)
}

func setSalt(salt []byte) wamock.AppStateMutation {
	return wamock.AppStateMutation{Operation: waServerSync.SyncdMutation_SET,
		Index: []string{wamock.NctSaltIndex}, Value: wamock.NctSaltValue(salt), Version: 1}
}

// TestSaltChangesApplyInOrder: one app-state sync brings two SETs of the
// salt, the older first. Their two changes run on goroutines of their own;
// the test holds the older one back until the newer one has applied, the
// order the scheduler may pick. The older must then not be written over
// the newer, and the next first-contact send carries the cstoken of the
// newer salt.
func TestSaltChangesApplyInOrder(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		older, newer := []byte("salt-older-0123456789"), []byte("salt-newer-0123456789")
		f := newSaltFixture(t, db, func(c *Core) {
			c.beforeSaltChange = func(salt []byte) {
				if !bytes.Equal(salt, older) {
					return
				}
				deadline := time.Now().Add(10 * time.Second)
				for !bytes.Equal(c.Salt(), newer) {
					if time.Now().After(deadline) {
						t.Error("the newer salt never applied while the older one was held")
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
		})
		f.shareKeys(t)
		// Two patches, one notification: whatsmeow fetches both in one sync.
		if err := f.srv.Phone().AppendAppStatePatch(appstate.WAPatchRegularHigh, setSalt(older)); err != nil {
			t.Fatal(err)
		}
		if err := f.srv.Phone().SendAppStatePatch(ctx, appstate.WAPatchRegularHigh, setSalt(newer)); err != nil {
			t.Fatal(err)
		}
		// The held older change ends one way or the other: written (over
		// the newer one), or dropped as overtaken.
		waitFor(t, "the older salt change to end", func() bool {
			ever, _ := f.wasWritten(older)
			return ever || strings.Contains(f.logs.String(), "overtaken by a newer one")
		})
		// The newer salt is the last one written. (On the newer whatsmeow,
		// which schedules a re-read of regular_high for every salt it
		// stores, the re-read can apply the newer salt before the events
		// do; the older event's change may then be written in between,
		// and the newer event's change puts the newer salt back. Ordering
		// the re-read against the events needs a version the events do
		// not carry.)
		waitFor(t, "the newer salt to be the last one written", func() bool {
			_, last := f.wasWritten(newer)
			return last
		})
		// The next first contact gets the newer salt's cstoken.
		f.sendFirstContact(t, newer)
	})
}

// TestSaltReReadOrdersByItsFetch: a re-read of regular_high (after a full
// sync, or a backfill) fetched the collection before the salt was set, and
// comes to apply what it found, no salt, only after the SET's event stored
// the salt. What it fetched is older than that change: it must not
// withdraw the salt, or every first contact goes out without a cstoken
// until app state speaks again.
func TestSaltReReadOrdersByItsFetch(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		type heldReRead struct{}
		salt := []byte("salt-set-after-fetch-0123")
		reached, release := make(chan struct{}), make(chan struct{})
		var releaseOnce sync.Once
		f := newSaltFixture(t, db, func(c *Core) {
			c.afterSaltRescanFetch = func(ctx context.Context) {
				if ctx.Value(heldReRead{}) != nil {
					close(reached)
					<-release
				}
			}
		})
		t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
		f.shareKeys(t)
		// A snapshot re-read, as after a full sync: it fetches the
		// collection without the salt, then is held.
		done := make(chan rescanResult, 1)
		go func() {
			done <- f.c.rescanSalt(context.WithValue(context.Background(), heldReRead{}, true), 0)
		}()
		select {
		case <-reached:
		case <-time.After(10 * time.Second):
			t.Fatal("the re-read never fetched")
		}
		if err := f.srv.Phone().SendAppStatePatch(context.Background(), appstate.WAPatchRegularHigh, setSalt(salt)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the SET's event to store the salt", func() bool { return bytes.Equal(f.c.Salt(), salt) })
		releaseOnce.Do(func() { close(release) })
		var result rescanResult
		select {
		case result = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the held re-read never ended")
		}
		if result != rescanAbsent {
			t.Fatalf("re-read result %d, want absent (%d)", result, rescanAbsent)
		}
		f.mu.Lock()
		removed := f.removed
		f.mu.Unlock()
		if removed != 0 {
			t.Fatalf("the stale re-read removed the salt (%d removals)", removed)
		}
		if !bytes.Equal(f.c.Salt(), salt) {
			t.Fatal("the salt in memory is gone after the stale re-read")
		}
		f.sendFirstContact(t, salt)
	})
}

// TestSaltSetThenRemoveInOneSync: one app-state sync brings a SET of the
// salt and then a REMOVE (the account set and cleared it while we were
// away). whatsmeow 33cfac51 applies both mutations in order, the SET
// through PutNCTSalt and the REMOVE through DeleteNCTSalt, and dispatches
// the SET's event only after both. The event must order where whatsmeow
// applied the SET, before the removal: applied after it, it would put the
// removed salt back until the re-read takes it away again, and first
// contacts meanwhile carry a cstoken from a salt the account removed. The
// re-reads of regular_high are held, so that only the event could bring
// the salt back in the window the test looks at.
//
// whatsmeow 2025-12 calls no salt store and emits no event for the REMOVE:
// there the SET's event applies the salt and only the re-read the removal
// schedules takes it away, which the test checks instead.
func TestSaltSetThenRemoveInOneSync(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		salt := []byte("salt-set-then-removed-0123")
		var hold atomic.Bool
		reached, release := make(chan struct{}), make(chan struct{})
		var reachedOnce, releaseOnce sync.Once
		f := newSaltFixture(t, db, func(c *Core) {
			c.afterSaltRescanFetch = func(context.Context) {
				if hold.Load() {
					reachedOnce.Do(func() { close(reached) })
					<-release
				}
			}
		})
		t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
		f.shareKeys(t)
		_, saltStore := f.c.compat.NCTSaltStore(f.c.cli.Store)
		hold.Store(true)
		logStart := len(f.logs.String())
		// Two patches, one notification: whatsmeow fetches both in one sync.
		if err := f.srv.Phone().AppendAppStatePatch(appstate.WAPatchRegularHigh, setSalt(salt)); err != nil {
			t.Fatal(err)
		}
		if err := f.srv.Phone().SendAppStatePatch(ctx, appstate.WAPatchRegularHigh, wamock.AppStateMutation{
			Operation: waServerSync.SyncdMutation_REMOVE, Index: []string{wamock.NctSaltIndex},
			Value: &waSyncAction.SyncActionValue{}, Version: 1,
		}); err != nil {
			t.Fatal(err)
		}
		removals := func() int {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.removed
		}
		if !saltStore {
			// whatsmeow 2025-12: the event applies the salt; the re-read,
			// held, has yet to learn of the removal.
			waitFor(t, "the SET's event to store the salt", func() bool { return bytes.Equal(f.c.Salt(), salt) })
			releaseOnce.Do(func() { close(release) })
			waitFor(t, "the re-read to remove the salt", func() bool { return removals() > 0 })
			if f.c.Salt() != nil {
				t.Fatal("the salt is still in memory after the re-read removed it")
			}
			f.sendFirstContactWithout(t, salt)
			return
		}
		// whatsmeow removed its salt (DeleteNCTSalt), and the SET's event,
		// dispatched after, has had its turn: written, or dropped as
		// overtaken by the removal.
		waitFor(t, "whatsmeow's removal of the salt", func() bool { return removals() > 0 })
		waitFor(t, "the SET's event to end", func() bool {
			ever, _ := f.wasWritten(salt)
			return ever || strings.Contains(f.logs.String()[logStart:], "overtaken by a newer one")
		})
		if ever, _ := f.wasWritten(salt); ever {
			t.Fatal("the SET's event, dispatched after the removal, stored the removed salt again")
		}
		if f.c.Salt() != nil {
			t.Fatal("the removed salt is in memory")
		}
		f.sendFirstContactWithout(t, salt)
		// The re-read PutNCTSalt scheduled finds the REMOVE last, or
		// stands aside for the removal: either way no salt comes back.
		select {
		case <-reached:
		case <-time.After(10 * time.Second):
			t.Fatal("the re-read PutNCTSalt schedules never fetched")
		}
		releaseOnce.Do(func() { close(release) })
		waitFor(t, "the re-read to end", func() bool {
			logs := f.logs.String()[logStart:]
			return strings.Contains(logs, "Re-read regular_high for the NCT salt")
		})
		waitFor(t, "the re-read to apply what it found", func() bool {
			logs := f.logs.String()[logStart:]
			return strings.Contains(logs, "Dropped a re-read") || removals() > 1
		})
		if ever, _ := f.wasWritten(salt); ever || f.c.Salt() != nil {
			t.Fatal("the removed salt came back after the re-read")
		}
		f.sendFirstContactWithout(t, salt)
	})
}

// TestSaltHistoryPutLeavesNoMisorder: on whatsmeow 33cfac51 history
// sync's salt goes through PutNCTSalt too, and its seq waits for an event
// that never comes. An app-state SET of the same salt later, after a
// removal, must order by its own PutNCTSalt: taking the history sync's
// older seq, its event would be dropped as overtaken by the removal and
// the salt would stay away until the re-read (held here) puts it back.
// On whatsmeow 2025-12, which calls no salt store, the event orders as it
// arrives, and the test checks the same outcome. (Numbering every event as
// it arrives would pass too: the test guards the choice of the newest seq
// kept for a salt, not the keeping.)
func TestSaltHistoryPutLeavesNoMisorder(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		salt, other := []byte("salt-history-then-app-0123"), []byte("salt-other-0123456789")
		var hold atomic.Bool
		release := make(chan struct{})
		var releaseOnce sync.Once
		f := newSaltFixture(t, db, func(c *Core) {
			c.afterSaltRescanFetch = func(context.Context) {
				if hold.Load() {
					<-release
				}
			}
		})
		t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
		f.shareKeys(t)
		_, saltStore := f.c.compat.NCTSaltStore(f.c.cli.Store)
		hs := &waHistorySync.HistorySync{SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum()}
		if err := f.srv.Phone().SendHistorySync(ctx, hs, wamock.HistorySyncNctSaltRaw(salt)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the history sync's salt as the backfill", func() bool { return bytes.Equal(f.c.Salt(), salt) })
		if saltStore {
			waitFor(t, "whatsmeow to store the history sync's salt", func() bool {
				f.c.saltPuts.mu.Lock()
				defer f.c.saltPuts.mu.Unlock()
				return len(f.c.saltPuts.entries) > 0
			})
		}
		if err := f.srv.Phone().SetNCTSalt(ctx, other); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "app state's salt", func() bool { return bytes.Equal(f.c.Salt(), other) })
		if err := f.srv.Phone().RemoveNCTSalt(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the removal", func() bool { return f.c.Salt() == nil })
		hold.Store(true)
		logStart := len(f.logs.String())
		if err := f.srv.Phone().SetNCTSalt(ctx, salt); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the SET's event to end", func() bool {
			return bytes.Equal(f.c.Salt(), salt) || strings.Contains(f.logs.String()[logStart:], "overtaken by a newer one")
		})
		if !bytes.Equal(f.c.Salt(), salt) {
			t.Fatal("the SET after the removal was dropped as overtaken")
		}
		f.sendFirstContact(t, salt)
	})
}

// lockedBuffer collects log lines from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond until it holds, failing t after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
