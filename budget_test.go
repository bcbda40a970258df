package tctoken_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/internal/dbtest"
	tcsqlstore "github.com/tctoken/tctoken/sqlstore"
	"github.com/tctoken/tctoken/wamock"
)

// queryCounter, once counting, counts the plugin's token-table queries, split into reads and
// writes, by wrapping the database's logger.
type queryCounter struct {
	dbutil.DatabaseLogger
	counting      atomic.Bool
	reads, writes atomic.Int64
}

func (q *queryCounter) QueryTiming(ctx context.Context, method, query string, args []any, nrows int, d time.Duration, err error) {
	// EndRows reports the end of a query already counted.
	if q.counting.Load() && strings.Contains(query, "tctoken_") && method != "EndRows" {
		if strings.HasPrefix(strings.TrimSpace(strings.ToUpper(query)), "SELECT") {
			q.reads.Add(1)
		} else {
			q.writes.Add(1)
		}
	}
	q.DatabaseLogger.QueryTiming(ctx, method, query, args, nrows, d, err)
}

// countQueries must wrap the logger before anything uses the database.
func countQueries(db *dbutil.Database) *queryCounter {
	counter := &queryCounter{DatabaseLogger: db.Log}
	db.Log = counter
	return counter
}

// TestSendPathBudget: at most one read for a contact not yet cached, none
// once cached, and no write unless an issuance is due.
func TestSendPathBudget(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		counter := countQueries(db)
		w := newWorld(t, db).connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		if _, err := w.plugin.IssueTokens(w.ctx, []types.JID{alice.LID()}); err != nil {
			t.Fatal(err)
		}
		w.receiveToken(alice.LID(), "alice-token")
		w.plugin.Close() // let nothing in the background touch the counters
		w.start()        // a fresh plugin: an empty cache
		w.connect()
		// Both connects have fetched props and pruned: nothing else runs.
		w.waitLog(2, "Pruned expired privacy tokens")

		counter.counting.Store(true)
		if _, err := w.plugin.SendMessage(w.ctx, alice.LID(), text("one")); err != nil {
			t.Fatal(err)
		}
		if r, wr := counter.reads.Load(), counter.writes.Load(); r != 1 || wr != 0 {
			t.Fatalf("first send to an uncached contact: %d reads, %d writes; want 1 and 0", r, wr)
		}
		for range 5 {
			if _, err := w.plugin.SendMessage(w.ctx, alice.LID(), text("again")); err != nil {
				t.Fatal(err)
			}
		}
		if r, wr := counter.reads.Load(), counter.writes.Load(); r != 1 || wr != 0 {
			t.Fatalf("cached sends: %d reads, %d writes in all; want still 1 and 0", r, wr)
		}
	})
}

// BenchmarkDecide measures deciding what to attach for a cached contact:
// the work the plugin adds to every send.
func BenchmarkDecide(b *testing.B) {
	w := newWorld(b, dbtest.SQLite(b))
	alice := types.NewJID("400000000000001", types.HiddenUserServer)
	if err := w.cli.Store.PrivacyTokens.PutPrivacyTokens(context.Background(), storeToken(alice, "alice-token", w.clock.Now())); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	// The same contacts addressed by phone number: whatsmeow's LID map knows
	// the mapping, and the token is stored under the LID.
	alicePN := types.NewJID("15550000101", types.DefaultUserServer)
	stranger := types.NewJID("400000000000002", types.HiddenUserServer)
	strangerPN := types.NewJID("15550000102", types.DefaultUserServer)
	for lid, pn := range map[types.JID]types.JID{alice: alicePN, stranger: strangerPN} {
		if err := w.cli.Store.LIDs.PutLIDMapping(ctx, lid, pn); err != nil {
			b.Fatal(err)
		}
	}
	decide := func(name string, to types.JID, want tctoken.Attach) {
		if got := w.plugin.Decide(ctx, to); got.Attach != want { // and warm the cache
			b.Fatalf("%s: decided %s (%s), want %s", name, got.Attach, got.Reason, want)
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				w.plugin.Decide(ctx, to)
			}
		})
	}
	decide("tctoken-cached", alice, tctoken.AttachTCToken)
	decide("tctoken-cached-pn", alicePN, tctoken.AttachTCToken)
	decide("nothing-cached", stranger, tctoken.AttachNothing)
	// With a salt, a first contact gets a cstoken: the HMAC is the cost.
	if err := tcsqlstore.New(w.db).ForAccount(*w.device.ID).SetAppStateSalt(ctx, []byte("bench-salt")); err != nil {
		b.Fatal(err)
	}
	w.plugin.Close()
	w.start() // a new plugin loads the salt
	decide("cstoken-cached", stranger, tctoken.AttachCSToken)
	decide("cstoken-cached-pn", strangerPN, tctoken.AttachCSToken)
	b.Run("interposer-read-cached", func(b *testing.B) {
		for b.Loop() {
			_, _ = w.cli.Store.PrivacyTokens.GetPrivacyToken(ctx, alice)
		}
	})
}
