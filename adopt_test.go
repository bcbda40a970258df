package tctoken_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/internal/dbtest"
	tcsqlstore "github.com/tctoken/tctoken/sqlstore"
	"github.com/tctoken/tctoken/wamock"
)

func TestEnableImportsWhatsmeowTokens(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		// A bridge that ran whatsmeow alone, and so holds tokens in
		// whatsmeow's own table: alice's under her LID, bob's under his
		// phone number, and an expired one from carol.
		w := newBareWorld(t, db, nil)
		w.startPlain()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		bob := w.srv.AddContact(wamock.ContactOptions{})
		carol := w.srv.AddContact(wamock.ContactOptions{})
		now := w.clock.Now()
		err := w.cli.Store.PrivacyTokens.PutPrivacyTokens(w.ctx,
			storeToken(alice.LID(), "alice-before", now.Add(-time.Hour)),
			storeToken(bob.PN(), "bob-before", now.Add(-2*time.Hour)),
			storeToken(carol.LID(), "carol-expired", now.Add(-60*24*time.Hour)))
		if err != nil {
			t.Fatal(err)
		}

		// The bridge adds the Enable line and restarts.
		w.reloadDevice()
		w.start()
		w.connect()
		w.srv.SetMessageRule(wamock.RequireToken())

		// The first reply to each existing contact carries its token, by
		// plain Client.SendMessage and through the plugin.
		if got := childBytes(w.rawSend(alice.LID()), "tctoken"); string(got) != "alice-before" {
			t.Fatalf("plain send to alice: tctoken %q, want alice-before", got)
		}
		msg, err := w.sendAndCapture(bob.PN())
		if err != nil {
			t.Fatalf("send to bob: %v", err)
		}
		if got := childBytes(msg, "tctoken"); string(got) != "bob-before" {
			t.Fatalf("send to bob: tctoken %q, want bob-before", got)
		}

		// The import copies the rows with their timestamps, and leaves the
		// expired one behind.
		w.waitLog(1, "Imported whatsmeow's privacy tokens")
		e, err := w.plugin.Get(w.ctx, alice.LID())
		if err != nil || e == nil || string(e.Token) != "alice-before" || e.TokenTimestamp.Unix() != now.Add(-time.Hour).Unix() {
			t.Fatalf("alice after the import: %+v, %v", e, err)
		}
		if e, _ := w.plugin.Get(w.ctx, carol.LID()); e != nil {
			t.Fatalf("an expired token must not be imported: %+v", e)
		}

		// A restart goes over whatsmeow's table again, and finds nothing
		// the plugin lacks.
		w.restart()
		if got := childBytes(w.rawSend(alice.LID()), "tctoken"); string(got) != "alice-before" {
			t.Fatalf("after restart: tctoken %q", got)
		}
		w.waitLog(2, "Imported whatsmeow's privacy tokens")
		// The second pass hands nothing over. (The first may hand over
		// nothing either: a send that reads whatsmeow's store while the
		// pass is still under way can take a row over before the pass
		// reaches it.) The newer whatsmeow issues by itself, and records
		// its sender timestamps with its own clock, not the test's: its
		// next pass may find one of them.
		var last string
		for _, line := range strings.Split(w.logs.String(), "\n") {
			if strings.Contains(line, "Imported whatsmeow's privacy tokens") {
				last = line
			}
		}
		if !strings.Contains(last, `"rows":0`) && !w.plugin.NativeTokens() {
			t.Fatalf("the pass after the restart handed rows over: %s", last)
		}
	})
}

func TestRemovingThePluginKeepsTokens(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(alice.LID(), "alice-token")
		w.srv.SetMessageRule(wamock.RequireToken())

		// Close: whatsmeow's own store answers from now on.
		w.plugin.Close()
		if got := childBytes(w.rawSend(alice.LID()), "tctoken"); string(got) != "alice-token" {
			t.Fatalf("after Close: tctoken %q, want alice-token", got)
		}

		// The Enable line deleted: a new process runs whatsmeow alone.
		w.reloadDevice()
		w.startPlain()
		w.connect()
		if got := childBytes(w.rawSend(alice.LID()), "tctoken"); string(got) != "alice-token" {
			t.Fatalf("without the plugin: tctoken %q, want alice-token", got)
		}
		stored, err := w.cli.Store.PrivacyTokens.GetPrivacyToken(w.ctx, alice.LID())
		if err != nil || stored == nil || stored.Timestamp.Unix() != w.clock.Now().Unix() {
			t.Fatalf("whatsmeow's row must carry the token's own timestamp: %+v, %v", stored, err)
		}
	})
}

// usyncLIDLookups counts the plugin's LID lookups since mark: usync queries
// in "full" mode (whatsmeow's GetUserInfo) naming jid.
func (w *world) usyncLIDLookups(mark int, jid types.JID) int {
	n := 0
	for _, node := range w.srv.Since(mark) {
		if !wamock.IsIQ("usync", "get")(node) {
			continue
		}
		usync, _ := node.GetOptionalChildByTag("usync")
		if usync.Attrs["mode"] != "full" {
			continue
		}
		list := usync.GetChildByTag("list")
		for _, user := range list.GetChildren() {
			if user.Attrs["jid"] == jid {
				n++
			}
		}
	}
	return n
}

func TestFirstContactByPhoneNumber(t *testing.T) {
	kinds := []struct {
		name   string
		opts   []wamock.Option
		viaLID bool // whatsmeow addresses the message to the LID
	}{
		{name: "PN-addressed account"},
		{name: "LID-migrated account", opts: []wamock.Option{wamock.WithLIDMigrated()}, viaLID: true},
	}
	for _, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			forEachDB(t, func(t *testing.T, db *dbutil.Database) {
				w := newBareWorld(t, db, kind.opts)
				w.start()
				w.connect()
				w.srv.SetMessageRule(wamock.RequireCSToken(testSalt))
				w.setSaltViaAppState(testSalt)
				bob := w.srv.AddContact(wamock.ContactOptions{})
				if lid, _ := w.cli.Store.LIDs.GetLIDForPN(w.ctx, bob.PN()); !lid.IsEmpty() {
					t.Fatal("precondition: the client must not know bob's LID yet")
				}
				// Decide does no network I/O: it says a send would look it up.
				d := w.plugin.Decide(w.ctx, bob.PN())
				if d.Attach != tctoken.AttachNothing || !strings.Contains(d.Reason, "looks it up") {
					t.Fatalf("Decide for a never-seen number: %+v", d)
				}

				// Five concurrent first messages to the new number: one
				// lookup, and each accepted at the first try.
				mark := w.srv.Mark()
				var wg sync.WaitGroup
				errs := make(chan error, 5)
				for range 5 {
					wg.Go(func() {
						_, err := w.plugin.SendMessage(w.ctx, bob.PN(), text("hello"))
						errs <- err
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						t.Fatalf("a first message by phone number must be accepted: %v", err)
					}
				}
				if n := w.usyncLIDLookups(mark, bob.PN()); n != 1 {
					t.Fatalf("%d LID lookups for one new number, want 1", n)
				}
				// The newer whatsmeow sends every DM to the LID.
				viaLID := kind.viaLID || w.plugin.NativeTokens()
				addressedTo := bob.PN()
				if viaLID {
					addressedTo = bob.LID()
				}
				sent := 0
				for _, node := range w.srv.Since(mark) {
					if node.Tag != "message" {
						continue
					}
					if to, _ := node.Attrs["to"].(types.JID); to.ToNonAD() != addressedTo {
						t.Fatalf("message addressed to %v, whatsmeow addresses it to %s", node.Attrs["to"], addressedTo)
					}
					sent++
					if got := childBytes(node, "cstoken"); !bytes.Equal(got, wantCSToken(testSalt, bob.LID())) {
						t.Fatalf("cstoken = %x, want the one over bob's LID", got)
					}
					if _, has := child(node, "tctoken"); has {
						t.Fatal("never both tokens")
					}
				}
				if sent != 5 {
					t.Fatalf("%d messages reached the server, want 5", sent)
				}

				// A number the server knows no LID for is asked about once,
				// not on every send.
				nobody := w.srv.AddContact(wamock.ContactOptions{NoLID: true})
				mark = w.srv.Mark()
				for range 2 {
					if _, err := w.plugin.SendMessage(w.ctx, nobody.PN(), text("hi")); err == nil {
						t.Fatal("the server requires a token: without a LID, no cstoken, so 463")
					}
				}
				want := 1
				if viaLID {
					// whatsmeow on a migrated account (and the newer one
					// always) looks the LID up itself on every send to a PN
					// it has none for.
					want += 2
				}
				if n := w.usyncLIDLookups(mark, nobody.PN()); n != want {
					t.Fatalf("%d lookups for a number without a LID, want %d: the plugin's once, then cached", n, want)
				}
			})
		})
	}
}

func TestHandleHistorySyncForManualDownload(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db)
		// mautrix-whatsapp's way: whatsmeow does not download history, the
		// bridge does, and the plugin never sees events.HistorySync.
		w.cli.ManualHistorySyncDownload = true
		handled := make(chan error, 1)
		w.cli.AddEventHandler(func(evt any) {
			msg, ok := evt.(*events.Message)
			if !ok {
				return
			}
			notif := msg.Message.GetProtocolMessage().GetHistorySyncNotification()
			if notif == nil {
				return
			}
			go func() {
				blob, err := w.cli.DownloadHistorySync(context.Background(), notif, true)
				if err == nil {
					w.plugin.HandleHistorySync(context.Background(), blob) // the one extra line
				}
				handled <- err
			}()
		})
		w.connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		now := w.clock.Now().Unix()
		tokenTS, senderTS := now-3600, now-60
		hs := &waHistorySync.HistorySync{
			SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(),
			Conversations: []*waHistorySync.Conversation{{
				ID: proto.String(alice.PN().String()), TcToken: []byte("alice-history"),
				TcTokenTimestamp: proto.Uint64(uint64(tokenTS)), TcTokenSenderTimestamp: proto.Uint64(uint64(senderTS)),
			}},
			PhoneNumberToLidMappings: []*waHistorySync.PhoneNumberToLIDMapping{
				{PnJID: proto.String(alice.PN().String()), LidJID: proto.String(alice.LID().String())},
			},
		}
		if err := w.srv.Phone().SendHistorySync(w.ctx, hs, historySalt(testSalt)); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-handled:
			if err != nil {
				t.Fatalf("download: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the bridge's history handler never ran")
		}
		if !w.plugin.HasSalt() {
			t.Fatal("the salt backfill must be captured through HandleHistorySync")
		}
		e, err := w.plugin.Get(w.ctx, alice.PN())
		if err != nil || e == nil || e.JID != alice.LID() || e.TokenTimestamp.Unix() != tokenTS || e.SenderTimestamp.Unix() != senderTS {
			t.Fatalf("history tokens through HandleHistorySync: %+v, %v", e, err)
		}
	})
}

func TestLogoutDeletesOnlyThatAccount(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		// Two accounts of one bridge in one database.
		stay := newBareWorld(t, db, []wamock.Option{wamock.WithOwnPN("15550000071")})
		stay.start()
		stay.connect()
		leave := newBareWorld(t, db, []wamock.Option{wamock.WithOwnPN("15550000072")})
		leave.start()
		leave.connect()
		alice := stay.srv.AddContact(wamock.ContactOptions{LID: "200000000000071"})
		bob := leave.srv.AddContact(wamock.ContactOptions{LID: "200000000000072"})
		stay.receiveToken(alice.LID(), "alice-token")
		leave.receiveToken(bob.LID(), "bob-token")

		// Client.Logout in whatsmeow 2025-12 emits no LoggedOut event.
		leaving := *leave.device.ID
		// Logout disconnects: let the client finish sending first, as
		// whatsmeow 2025-12 races (under -race) with a frame in flight.
		leave.srv.WaitIdle(leave.deviceNum, time.Second)
		if err := leave.cli.Logout(leave.ctx); err != nil {
			t.Fatalf("logout: %v", err)
		}
		eventually(t, "the logged-out account's rows deleted", func() bool {
			return countRows(t, db, leaving) == 0
		})
		if n := countRows(t, db, *stay.device.ID); n == 0 {
			t.Fatal("the other account lost its rows")
		}
		if e, err := stay.plugin.Get(stay.ctx, alice.LID()); err != nil || e == nil || string(e.Token) != "alice-token" {
			t.Fatalf("the other account's token: %+v, %v", e, err)
		}
	})
}

// countRows counts an account's rows in every plugin table.
func countRows(t *testing.T, db *dbutil.Database, account types.JID) int {
	t.Helper()
	total := 0
	for _, table := range []string{"tctoken_tokens", "tctoken_nct_salt", "tctoken_ab_props", "tctoken_ab_props_meta", "tctoken_imports"} {
		var n int
		if err := db.QueryRow(context.Background(), "SELECT COUNT(*) FROM "+table+" WHERE our_jid=$1", account.String()).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		total += n
	}
	return total
}

// versionQueries counts the statements that touch the plugin's version
// table: one upgrade reads and writes it, a skipped one does not.
type versionQueries struct {
	dbutil.DatabaseLogger
	n atomic.Int64
}

func (v *versionQueries) QueryTiming(ctx context.Context, method, query string, args []any, nrows int, d time.Duration, err error) {
	if strings.Contains(query, "tctoken_version") && method != "EndRows" {
		v.n.Add(1)
	}
	v.DatabaseLogger.QueryTiming(ctx, method, query, args, nrows, d, err)
}

func TestManyAccountsUpgradeOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		counter := &versionQueries{DatabaseLogger: db.Log}
		db.Log = counter
		srv := wamock.NewServer(t)
		container := dbtest.WhatsmeowContainer(t, db)
		const clients = 50
		var wg sync.WaitGroup
		plugins := make(chan *tctoken.Plugin, clients)
		for range clients {
			device, err := srv.NewDevice(context.Background(), container)
			if err != nil {
				t.Fatal(err)
			}
			cli := srv.NewClient(device, nil)
			wg.Go(func() {
				plugin, err := tctoken.Enable(context.Background(), cli, db)
				if err != nil {
					t.Errorf("Enable: %v", err)
					return
				}
				plugins <- plugin
			})
		}
		wg.Wait()
		close(plugins)
		enabled := 0
		for plugin := range plugins {
			plugin.Close()
			enabled++
		}
		if enabled != clients {
			t.Fatalf("%d of %d clients enabled", enabled, clients)
		}
		once := counter.n.Load()
		if once == 0 {
			t.Fatal("no upgrade statement seen: the test proves nothing")
		}
		// One more client on the same database: no upgrade statement at all.
		device, err := srv.NewDevice(context.Background(), container)
		if err != nil {
			t.Fatal(err)
		}
		plugin, err := tctoken.Enable(context.Background(), srv.NewClient(device, nil), db)
		if err != nil {
			t.Fatal(err)
		}
		plugin.Close()
		if got := counter.n.Load(); got != once {
			t.Fatalf("a later Enable on the same database ran %d more version-table statements", got-once)
		}
		// And the 50 together cost what one upgrade costs: run one on a fresh
		// pool of another database to compare.
		fresh := dbtest.SQLite(t)
		freshCounter := &versionQueries{DatabaseLogger: fresh.Log}
		fresh.Log = freshCounter
		if err := tcsqlstore.New(fresh).Upgrade(context.Background()); err != nil {
			t.Fatal(err)
		}
		if once != freshCounter.n.Load() {
			t.Fatalf("50 clients ran %d version-table statements, one upgrade runs %d", once, freshCounter.n.Load())
		}
	})
}
