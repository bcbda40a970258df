package tctoken_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"google.golang.org/protobuf/proto"

	"github.com/tctoken/tctoken"
	tcsqlstore "github.com/tctoken/tctoken/sqlstore"
	"github.com/tctoken/tctoken/wamock"
)

// TestPluginTablesOutage takes the plugin's token table away mid-session (as
// a database that stops answering for it would) and back: every message
// still goes out, with the newest token whatsmeow's own store took during
// the outage, each failure is logged once, and the plugin recovers without
// a restart.
func TestPluginTablesOutage(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		w.srv.SetMessageRule(wamock.RequireToken())
		alice := w.srv.AddContact(wamock.ContactOptions{})
		w.waitLog(1, "Imported whatsmeow's privacy tokens")
		w.receiveToken(alice.LID(), "alice-token")
		if got := childBytes(w.rawSend(alice.LID()), "tctoken"); string(got) != "alice-token" {
			t.Fatalf("before the outage: tctoken %q", got)
		}

		if _, err := db.Exec(w.ctx, "ALTER TABLE tctoken_tokens RENAME TO tctoken_tokens_away"); err != nil {
			t.Fatal(err)
		}
		// During the outage: a history sync names alice (its writes fail,
		// and it marks her cached entry for a re-read, which fails too), a
		// prune fails, and a new token from her cannot be stored in the
		// plugin's table, but whatsmeow's own store takes it, as it would
		// without the plugin.
		now := w.clock.Now().Unix()
		hs := &waHistorySync.HistorySync{
			SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(),
			Conversations: []*waHistorySync.Conversation{{
				ID: proto.String(alice.LID().String()), TcToken: []byte("alice-history"),
				TcTokenTimestamp: proto.Uint64(uint64(now - 10)), TcTokenSenderTimestamp: proto.Uint64(uint64(now - 5)),
			}},
		}
		if err := w.srv.Phone().SendHistorySync(w.ctx, hs, nil); err != nil {
			t.Fatal(err)
		}
		w.waitLog(1, "Failed to store history-sync privacy tokens")
		if _, err := w.plugin.PruneExpired(w.ctx); err == nil {
			t.Fatal("a prune without its table must fail")
		}
		w.pushToken(alice.LID(), alice.LID(), []byte("alice-new"), w.clock.Now())
		eventually(t, "whatsmeow's store holds alice-new", func() bool {
			return string(storedToken(t, db, "whatsmeow_privacy_tokens", *w.device.ID, alice.LID())) == "alice-new"
		})
		for i := range 5 {
			if got := childBytes(w.rawSend(alice.LID()), "tctoken"); string(got) != "alice-new" {
				t.Fatalf("send %d during the outage: tctoken %q, want alice-new from whatsmeow's store", i, got)
			}
		}
		if n := w.logLines(`"level":"warn"`, "using the last known ones"); n != 1 {
			t.Fatalf("the read failure was logged at warn level %d times, want once", n)
		}

		// The table is back: the next token is stored and attached.
		if _, err := db.Exec(w.ctx, "ALTER TABLE tctoken_tokens_away RENAME TO tctoken_tokens"); err != nil {
			t.Fatal(err)
		}
		w.clock.Advance(time.Minute)
		w.receiveToken(alice.LID(), "alice-after")
		if got := childBytes(w.rawSend(alice.LID()), "tctoken"); string(got) != "alice-after" {
			t.Fatalf("after the outage: tctoken %q, want alice-after", got)
		}
	})
}

// failingWrites is an AccountStore whose token writes fail while failing is
// set: the one-line fault injection WithStoreWrapper gives a test.
type failingWrites struct {
	tctoken.AccountStore
	failing *atomic.Bool
}

func (f failingWrites) PutTokens(ctx context.Context, writes ...tcsqlstore.TokenWrite) ([]bool, error) {
	if f.failing.Load() {
		return nil, errors.New("injected: the database refuses writes")
	}
	return f.AccountStore.PutTokens(ctx, writes...)
}

// TestInjectedStoreFault: with the plugin's writes failing, a new token
// cannot be stored in its tables, but whatsmeow's own store takes it (as it
// would without the plugin) and every send carries it, the failure is
// logged, and the next token after the fault is stored and attached.
func TestInjectedStoreFault(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		var failing atomic.Bool
		w := newWorld(t, db, tctoken.WithStoreWrapper(func(s tctoken.AccountStore) tctoken.AccountStore {
			return failingWrites{AccountStore: s, failing: &failing}
		})).connect()
		w.srv.SetMessageRule(wamock.RequireToken())
		alice := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(alice.LID(), "alice-token")

		failing.Store(true)
		w.clock.Advance(time.Minute)
		w.pushToken(alice.LID(), alice.LID(), []byte("alice-during"), w.clock.Now())
		w.waitLog(1, `"level":"warn"`, "injected: the database refuses writes")
		eventually(t, "whatsmeow's store holds alice-during", func() bool {
			return string(storedToken(t, db, "whatsmeow_privacy_tokens", *w.device.ID, alice.LID())) == "alice-during"
		})
		for i := range 3 {
			if got := childBytes(w.rawSend(alice.LID()), "tctoken"); string(got) != "alice-during" {
				t.Fatalf("send %d with writes failing: tctoken %q, want alice-during, which whatsmeow's store took", i, got)
			}
		}

		failing.Store(false)
		w.clock.Advance(time.Minute)
		w.receiveToken(alice.LID(), "alice-after")
		if got := childBytes(w.rawSend(alice.LID()), "tctoken"); string(got) != "alice-after" {
			t.Fatalf("after the fault: tctoken %q, want alice-after", got)
		}
	})
}
