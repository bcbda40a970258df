package tctoken_test

import (
	"context"
	"runtime"
	"testing"
	"time"
	"weak"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/wamock"
)

// TestCloseInsideEventHandler: a bridge closes the plugin from its own
// event handler. Close returns, whatsmeow's dispatch goes on, and the
// plugin reacts to no later event.
func TestCloseInsideEventHandler(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		bob := w.srv.AddContact(wamock.ContactOptions{})
		closed := make(chan struct{})
		seen := make(chan types.JID, 16)
		w.cli.AddEventHandler(func(evt any) {
			receipt, ok := evt.(*events.Receipt)
			if !ok {
				return
			}
			if receipt.Chat == alice.LID() {
				w.plugin.Close()
				close(closed)
			}
			seen <- receipt.Chat
		})
		w.pushReceipt(alice.LID(), "3EB0CLOSE1")
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatal("Close inside an event handler did not return")
		}
		// Dispatch is not stuck: the next event arrives.
		mark := w.srv.Mark()
		w.pushReceipt(bob.LID(), "3EB0CLOSE2")
		for chat := range seen {
			if chat == bob.LID() {
				break
			}
		}
		w.srv.WaitIdle(w.deviceNum, time.Second)
		if n := len(w.privacyIQsFor(mark, bob.LID())); n != 0 {
			t.Fatalf("a closed plugin must not issue on receipts, got %d privacy IQs", n)
		}
	})
}

// TestCloseReturnsWhileIssuanceHangs: the server never answers the privacy
// IQ. Close gives the issuance its grace, cancels it and returns.
func TestCloseReturnsWhileIssuanceHangs(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t)).connect()
	alice := w.srv.AddContact(wamock.ContactOptions{})
	release := make(chan struct{})
	w.srv.SetPrivacyHandler(func(iq *waBinary.Node) *waBinary.Node {
		<-release
		return nil
	})
	t.Cleanup(func() { close(release) }) // before the world's cleanup, which runs earlier-registered last
	mark := w.srv.Mark()
	if _, err := w.plugin.SendMessage(w.ctx, alice.LID(), text("hi")); err != nil {
		t.Fatal(err)
	}
	w.srv.WaitForSince(t, mark, "the privacy IQ", wamock.IsIQ("privacy", "set"), 10*time.Second)
	returned := make(chan struct{})
	go func() {
		w.plugin.Close()
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return while an issuance hung")
	}
}

// TestDiscardedClientIsCollected: a client the bridge drops, with the
// plugin enabled and never closed, is garbage: no global keeps it, and
// neither does the plugin's issuance worker once it has run.
func TestDiscardedClientIsCollected(t *testing.T) {
	t.Run("never connected", func(t *testing.T) {
		db := dbtest.SQLite(t)
		container := dbtest.WhatsmeowContainer(t, db)
		requireCollected(t, func() *whatsmeow.Client {
			cli := whatsmeow.NewClient(container.NewDevice(), nil)
			if _, err := tctoken.Enable(context.Background(), cli, db); err != nil {
				t.Fatal(err)
			}
			return cli
		})
	})
	t.Run("after an issuance", func(t *testing.T) {
		ctx := context.Background()
		srv := wamock.NewServer(t)
		db := dbtest.SQLite(t)
		container := dbtest.WhatsmeowContainer(t, db)
		alice := srv.AddContact(wamock.ContactOptions{})
		requireCollected(t, func() *whatsmeow.Client {
			device, err := srv.NewDevice(ctx, container)
			if err != nil {
				t.Fatal(err)
			}
			cli := srv.NewClient(device, nil)
			plugin, err := tctoken.Enable(ctx, cli, db)
			if err != nil {
				t.Fatal(err)
			}
			srv.ConnectAndWait(t, cli)
			// The server's ack queues the issuance, which starts the worker.
			mark := srv.Mark()
			if _, err := plugin.SendMessage(ctx, alice.LID(), text("hi")); err != nil {
				t.Fatal(err)
			}
			srv.WaitForSince(t, mark, "the privacy IQ", wamock.IsIQ("privacy", "set"), 10*time.Second)
			srv.WaitIdle(device.ID.Device, time.Second)
			cli.Disconnect()
			return cli
		})
	})
}

// requireCollected builds a client, drops it and requires that the garbage
// collector reclaims it within a deadline (background work may still be
// ending when the builder returns).
func requireCollected(t *testing.T, build func() *whatsmeow.Client) {
	t.Helper()
	ref := func() weak.Pointer[whatsmeow.Client] { return weak.Make(build()) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		if ref.Value() == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a discarded client with the plugin enabled is still reachable")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// enableAgain enables a new plugin on the world's client after its plugin
// was closed, as a bridge that takes the plugin out and puts it back without
// a restart does.
func (w *world) enableAgain() {
	w.t.Helper()
	w.plugin.Close()
	log := zerolog.New(zerolog.MultiLevelWriter(w.logs, zerolog.NewTestWriter(w.t))).Level(zerolog.DebugLevel)
	opts := append([]tctoken.Option{tctoken.WithLogger(log), tctoken.WithClock(w.clock.Now)}, w.opts...)
	plugin, err := tctoken.Enable(w.ctx, w.cli, w.db, opts...)
	if err != nil {
		w.t.Fatalf("Enable again: %v", err)
	}
	w.plugin = plugin
	cli := w.cli
	w.t.Cleanup(func() { w.stop(plugin, cli) })
}

// logout is Client.Logout, which in whatsmeow 2025-12 emits no LoggedOut
// event: the plugin learns of it through the device container. It returns
// the account that logged out.
func (w *world) logout() types.JID {
	w.t.Helper()
	account := *w.device.ID
	// Logout disconnects: let the client finish sending first, as
	// whatsmeow 2025-12 races (under -race) with a frame in flight.
	w.srv.WaitIdle(w.deviceNum, time.Second)
	if err := w.cli.Logout(w.ctx); err != nil {
		w.t.Fatalf("logout: %v", err)
	}
	return account
}

// TestLogoutAfterReEnable: the plugin closed and enabled again on the same
// client still hears Client.Logout, and deletes the account's rows.
func TestLogoutAfterReEnable(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(alice.LID(), "alice-token")
		w.enableAgain()
		bob := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(bob.LID(), "bob-token")
		account := w.logout()
		if n := countRows(t, db, account); n != 0 {
			t.Fatalf("%d rows of the logged-out account left in the plugin's tables", n)
		}
	})
}

// TestCloseInsidePluginEventHandler: a bridge closes the plugin from its
// handler of the plugin's own SendDiagnosed event. Close must not wait for
// the goroutine that dispatched the event (which runs that handler): it
// returns before its grace runs out, with no "still running" warning, and
// whatsmeow's dispatch goes on.
func TestCloseInsidePluginEventHandler(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db, tctoken.WithRecovery(tctoken.Recovery{})).connect()
		bob := w.srv.AddContact(wamock.ContactOptions{})
		carol := w.srv.AddContact(wamock.ContactOptions{})
		w.srv.SetMessageRule(wamock.RequireToken())
		closed := make(chan time.Duration, 1)
		receipts := make(chan types.JID, 16)
		w.cli.AddEventHandler(func(evt any) {
			switch evt := evt.(type) {
			case *tctoken.SendDiagnosed:
				start := time.Now()
				w.plugin.Close()
				closed <- time.Since(start)
			case *events.Receipt:
				receipts <- evt.Chat
			}
		})
		if _, err := w.plugin.SendMessage(w.ctx, bob.LID(), text("hi")); err == nil {
			t.Fatal("the server must refuse the message with 463")
		}
		// A deadline below Close's grace (5 s): a Close that waited for
		// its own caller only returns after the grace, twice.
		select {
		case <-closed:
		case <-time.After(4 * time.Second):
			t.Fatal("Close inside the plugin's own event handler waited for itself")
		}
		if n := w.logLines("still running after Close"); n != 0 {
			t.Fatalf("Close logged %d false \"still running\" warnings", n)
		}
		// whatsmeow's dispatch is not stuck behind the pending removal.
		w.pushReceipt(carol.LID(), "3EB0CLOSE3")
		for chat := range receipts {
			if chat == carol.LID() {
				break
			}
		}
	})
}
