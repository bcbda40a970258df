package tctoken_test

import (
	"context"
	"runtime"
	"testing"
	"time"
	"weak"

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
// plugin enabled and never closed, is garbage: no global keeps it.
func TestDiscardedClientIsCollected(t *testing.T) {
	db := dbtest.SQLite(t)
	container := dbtest.WhatsmeowContainer(t, db)
	ref := func() weak.Pointer[whatsmeow.Client] {
		cli := whatsmeow.NewClient(container.NewDevice(), nil)
		if _, err := tctoken.Enable(context.Background(), cli, db); err != nil {
			t.Fatal(err)
		}
		return weak.Make(cli)
	}()
	for range 10 {
		runtime.GC()
		if ref.Value() == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("a discarded client with the plugin enabled is still reachable")
}
