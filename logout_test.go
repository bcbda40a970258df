package tctoken_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/sqlstore"
	"github.com/tctoken/tctoken/wamock"
)

// writeHold holds one write of the plugin's at the store, the way a slow
// database would, so that a test can log out while the write is under way
// and release it afterwards, in that order and no other.
type writeHold struct {
	once    sync.Once
	reached chan struct{} // closed when the writer arrives
	release chan struct{} // closed by the test
	done    chan struct{} // closed when the held write returned
}

func newWriteHold() *writeHold {
	return &writeHold{reached: make(chan struct{}), release: make(chan struct{}), done: make(chan struct{})}
}

// hold blocks the first caller until release; later callers pass.
func (h *writeHold) hold() (held bool) {
	h.once.Do(func() {
		held = true
		close(h.reached)
		<-h.release
	})
	return held
}

// heldStore holds the first write of one kind: "import" (after the
// import's first batch), "tokens" (a token write) or "sender" (an
// issuance's sender timestamp), and closes done when it returned.
type heldStore struct {
	tctoken.AccountStore
	kind string
	h    *writeHold
}

func (s heldStore) ImportWhatsmeowTokens(ctx context.Context, cutoff int64, write func(context.Context, sqlstore.ImportBatch) error) (sqlstore.ImportResult, error) {
	if s.kind != "import" {
		return s.AccountStore.ImportWhatsmeowTokens(ctx, cutoff, write)
	}
	defer close(s.h.done)
	return s.AccountStore.ImportWhatsmeowTokens(ctx, cutoff, func(ctx context.Context, batch sqlstore.ImportBatch) error {
		err := write(ctx, batch)
		s.h.hold()
		return err
	})
}

// PutTokens holds a token write; the test closes done when the writer (a
// whole transaction, maybe) has ended.
func (s heldStore) PutTokens(ctx context.Context, writes ...sqlstore.TokenWrite) ([]bool, error) {
	if s.kind == "tokens" {
		s.h.hold()
	}
	return s.AccountStore.PutTokens(ctx, writes...)
}

func (s heldStore) SetSenderTimestamps(ctx context.Context, ts int64, contacts ...types.JID) error {
	if s.kind == "sender" && s.h.hold() {
		defer close(s.h.done)
	}
	return s.AccountStore.SetSenderTimestamps(ctx, ts, contacts...)
}

// holdingWorld is a world whose store holds the first write of kind.
func holdingWorld(t *testing.T, db *dbutil.Database, kind string, h *writeHold, prepare func(w *world)) *world {
	w := newBareWorld(t, db, nil, tctoken.WithStoreWrapper(func(s tctoken.AccountStore) tctoken.AccountStore {
		return heldStore{AccountStore: s, kind: kind, h: h}
	}))
	if prepare != nil {
		prepare(w)
	}
	w.start()
	return w.connect()
}

// logoutDuring logs out while the held write is under way: Client.Logout
// starts, and the write is released once the logout either returned
// (nothing waited for the write) or said it waits for it. Then it requires
// that no row of the account is left once both ended.
func (w *world) logoutDuring(h *writeHold) {
	w.t.Helper()
	t := w.t.(*testing.T)
	select {
	case <-h.reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the write to hold never came")
	}
	account := *w.device.ID
	w.srv.WaitIdle(w.deviceNum, time.Second)
	loggedOut := make(chan error, 1)
	go func() { loggedOut <- w.cli.Logout(w.ctx) }()
	var logoutErr error
	returned := false
	eventually(t, "the logout to delete or to wait for the write", func() bool {
		select {
		case logoutErr = <-loggedOut:
			returned = true
		default:
		}
		return returned || w.logLines("Waiting for the account's writes under way") > 0
	})
	close(h.release)
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the held write never returned")
	}
	if !returned {
		select {
		case logoutErr = <-loggedOut:
		case <-time.After(10 * time.Second):
			t.Fatal("the logout never returned")
		}
	}
	if logoutErr != nil {
		t.Fatalf("logout: %v", logoutErr)
	}
	if n := countRows(t, w.db, account); n != 0 {
		t.Fatalf("%d rows of the logged-out account left in the plugin's tables", n)
	}
}

// TestLogoutDuringImport: the import of whatsmeow's tokens is between two
// steps when the account logs out. Nothing it copied, and no record that
// it ran, stays behind.
func TestLogoutDuringImport(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		h := newWriteHold()
		w := holdingWorld(t, db, "import", h, func(w *world) {
			alice := w.srv.AddContact(wamock.ContactOptions{})
			if err := w.device.PrivacyTokens.PutPrivacyTokens(w.ctx, storeToken(alice.LID(), "alice-token", w.clock.Now())); err != nil {
				t.Fatal(err)
			}
		})
		w.logoutDuring(h)
	})
}

// TestLogoutDuringHistorySync: the history handler is writing a blob's
// tokens when the account logs out.
func TestLogoutDuringHistorySync(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		h := newWriteHold()
		w := holdingWorld(t, db, "tokens", h, nil)
		alice := w.srv.AddContact(wamock.ContactOptions{})
		now := w.clock.Now().Unix()
		token := []byte("alice-history")
		w.secret(token)
		blob := &waHistorySync.HistorySync{
			SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(),
			Conversations: []*waHistorySync.Conversation{{
				ID: proto.String(alice.LID().String()), TcToken: token,
				TcTokenTimestamp: proto.Uint64(uint64(now - 3600)), TcTokenSenderTimestamp: proto.Uint64(uint64(now - 60)),
			}},
		}
		go func() {
			defer close(h.done)
			w.plugin.HandleHistorySync(w.ctx, blob)
		}()
		w.logoutDuring(h)
	})
}

// TestLogoutDuringIssuance: the server accepted our token and the worker
// is recording the sender timestamp when the account logs out.
func TestLogoutDuringIssuance(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		h := newWriteHold()
		w := holdingWorld(t, db, "sender", h, nil)
		alice := w.srv.AddContact(wamock.ContactOptions{})
		if _, err := w.plugin.SendMessage(w.ctx, alice.LID(), text("hi")); err != nil {
			t.Fatal(err)
		}
		w.logoutDuring(h)
	})
}
