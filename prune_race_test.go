package tctoken_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/tctoken/tctoken"
	tcsqlstore "github.com/tctoken/tctoken/sqlstore"
	"github.com/tctoken/tctoken/wamock"
)

// holdingStore is an AccountStore that, once armed, keeps the transaction
// of its next token write open after the write until the test releases it:
// the row a concurrent statement then finds is locked by a write that has
// not committed yet. It also says when a prune has reached the database.
type holdingStore struct {
	tctoken.AccountStore
	armed   atomic.Pointer[heldWrite]
	pruning chan struct{}
}

// heldWrite is one held token write: written is closed once the write is
// in (uncommitted), release lets it commit.
type heldWrite struct {
	written, release chan struct{}
}

func newHoldingStore() *holdingStore {
	return &holdingStore{pruning: make(chan struct{}, 1)}
}

func (h *holdingStore) wrap(s tctoken.AccountStore) tctoken.AccountStore {
	h.AccountStore = s
	return h
}

// holdNext arms the hold for the next token write.
func (h *holdingStore) holdNext() *heldWrite {
	held := &heldWrite{written: make(chan struct{}), release: make(chan struct{})}
	h.armed.Store(held)
	return held
}

func (h *holdingStore) PutTokens(ctx context.Context, writes ...tcsqlstore.TokenWrite) ([]bool, error) {
	held := h.armed.Swap(nil)
	if held == nil {
		return h.AccountStore.PutTokens(ctx, writes...)
	}
	var changed []bool
	// InTxn joins the transaction the write-through already opened, if
	// any: either way the write stays uncommitted while it is held.
	err := h.InTxn(ctx, func(ctx context.Context) error {
		var err error
		changed, err = h.AccountStore.PutTokens(ctx, writes...)
		close(held.written)
		<-held.release
		return err
	})
	return changed, err
}

func (h *holdingStore) Prune(ctx context.Context, recvCutoff, sendCutoff int64) (int64, error) {
	select {
	case h.pruning <- struct{}{}:
	default:
	}
	return h.AccountStore.Prune(ctx, recvCutoff, sendCutoff)
}

// waitPruneBlocked waits until a prune is under way and, on PostgreSQL,
// waiting for a row lock: the state in which it used to delete the row it
// waited for, whatever that row held after the commit. On SQLite a writer
// holds the database alone, so the prune's statements cannot start before
// the held write commits: reaching the store is all there is to wait for.
func (h *holdingStore) waitPruneBlocked(t *testing.T, w *world) {
	t.Helper()
	select {
	case <-h.pruning:
	case <-time.After(10 * time.Second):
		t.Fatal("the prune never reached the store")
	}
	if w.db.Dialect != dbutil.Postgres {
		return
	}
	eventually(t, "the prune waits on the held row", func() bool {
		var waiting int
		err := w.db.QueryRow(w.ctx, `
			SELECT COUNT(*) FROM pg_stat_activity
			WHERE datname = current_database() AND usename = current_user AND pid <> pg_backend_pid()
				AND wait_event_type = 'Lock' AND query LIKE '%tctoken_tokens%'`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		return waiting > 0
	})
}

// pluginToken reads the plugin's own row for a contact straight from its
// table, past the cache (which a prune updates in place, not from the
// database).
func (w *world) pluginToken(contact types.JID) string {
	w.t.Helper()
	var token []byte
	err := w.db.QueryRow(w.ctx, `SELECT token FROM tctoken_tokens WHERE our_jid=$1 AND their_jid=$2`,
		w.device.ID.String(), contact.ToNonAD().String()).Scan(&token)
	if err != nil {
		return ""
	}
	return string(token)
}

// A token that arrives while a prune runs survives it. alice's token has
// expired; a fresh one from her is written but not yet committed when the
// prune picks its batch (her expired row in it) and waits on her row. After
// the commit the prune must see that the row no longer holds an expired
// token: before, PostgreSQL checked only the batch it had computed, and
// deleted the fresh token. On SQLite the hold serialises the two.
func TestPruneKeepsATokenArrivingDuringIt(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		hold := newHoldingStore()
		w := newWorld(t, db, tctoken.WithStoreWrapper(hold.wrap)).connect()
		w.srv.SetMessageRule(wamock.RequireToken())
		alice := w.srv.AddContact(wamock.ContactOptions{})
		// The connect-time prune has run (and reached the store) before
		// the test's own.
		w.waitLog(1, "Pruned expired privacy tokens")
		<-hold.pruning

		w.pushToken(alice.LID(), types.EmptyJID, []byte("alice-expired"), w.clock.Now().Add(-400*24*time.Hour))
		w.waitToken(alice.LID(), []byte("alice-expired"))
		// More expired tokens than one batch, all newer than alice's: her
		// row is in the first batch, and the batch comes back one short.
		others := &waHistorySync.HistorySync{SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum()}
		for i := range tcsqlstore.PruneBatchSize + 100 {
			others.Conversations = append(others.Conversations, &waHistorySync.Conversation{
				ID:      proto.String(fmt.Sprintf("7%014d@lid", i)),
				TcToken: []byte(fmt.Sprintf("expired-%d", i)), TcTokenTimestamp: proto.Uint64(uint64(w.clock.Now().Add(-300 * 24 * time.Hour).Unix())),
			})
		}
		w.plugin.HandleHistorySync(w.ctx, others)

		held := hold.holdNext()
		w.pushToken(alice.LID(), types.EmptyJID, []byte("alice-fresh"), w.clock.Now())
		<-held.written
		pruned := make(chan error, 1)
		go func() {
			_, err := w.plugin.PruneExpired(w.ctx)
			pruned <- err
		}()
		hold.waitPruneBlocked(t, w)
		close(held.release)
		if err := <-pruned; err != nil {
			t.Fatal(err)
		}
		w.waitToken(alice.LID(), []byte("alice-fresh"))

		if got := w.pluginToken(alice.LID()); got != "alice-fresh" {
			t.Fatalf("after the prune the plugin's row for alice holds %q, want alice-fresh", got)
		}
		// The short batch did not end the prune.
		var left int
		if err := db.QueryRow(w.ctx, `SELECT COUNT(*) FROM tctoken_tokens WHERE our_jid=$1 AND their_jid LIKE '7%'`, w.device.ID.String()).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left != 0 {
			t.Fatalf("%d expired tokens left after the prune", left)
		}
		// What reaches the server after a restart, when only the database
		// speaks: the fresh token.
		w.restart()
		if got := childBytes(w.rawSend(alice.LID()), "tctoken"); string(got) != "alice-fresh" {
			t.Fatalf("after the prune and a restart: tctoken %q, want alice-fresh", got)
		}
	})
}
