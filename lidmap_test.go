package tctoken_test

import (
	"fmt"
	"testing"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/tctoken/tctoken/internal/dbtest"
)

// Tokens keyed by phone number, whose LIDs whatsmeow's LID map table holds
// from an earlier run, are stored under the LIDs, and the plugin's lookup
// adds nothing to whatsmeow's in-memory LID cache (issue 20): that cache
// never evicts, and filling it from the plugin's lookups grew the heap by
// 190 MB over an ingest of a million tokens. The blob goes the real way:
// the phone sends it, whatsmeow downloads it and writes its PN chats'
// tokens through the interposer, and the plugin's handler stores them all.
// The same blob on a bridge without the plugin is the bar: whatsmeow
// 2025-12 caches none of the mappings by itself, the newer one looks each
// PN chat up (and caches it) itself.
func TestPNIngestLeavesWhatsmeowLIDCache(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		const n = 50
		alone := cachedAfterPNBlob(t, openLike(t, db), n, false)
		if with := cachedAfterPNBlob(t, db, n, true); with > alone {
			t.Errorf("whatsmeow's LID cache holds %d of the %d mappings after the ingest with the plugin; %d without it", with, n, alone)
		}
	})
}

// openLike opens a fresh database of db's dialect.
func openLike(t *testing.T, db *dbutil.Database) *dbutil.Database {
	if db.Dialect == dbutil.Postgres {
		return dbtest.Postgres(t)
	}
	return dbtest.SQLite(t)
}

// cachedAfterPNBlob has the phone send a history blob of n conversations
// keyed by phone number, whose LIDs only whatsmeow's LID map table holds,
// waits until they are stored, and counts the mappings whatsmeow's LID
// store still answers once the table's rows are gone: those it cached.
func cachedAfterPNBlob(t *testing.T, db *dbutil.Database, n int, plugin bool) int {
	w := newBareWorld(t, db, nil)
	if plugin {
		w.start()
	} else {
		w.startPlain()
	}
	w.connect()
	if plugin {
		// A first token settles whether whatsmeow's store shares the
		// plugin's database (it does here, as in a mautrix bridge).
		w.receiveToken(types.NewJID("77700000", types.HiddenUserServer), "first")
	}
	pairs := make(map[types.JID]types.JID, n)
	now := w.clock.Now().Unix()
	hs := &waHistorySync.HistorySync{SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum()}
	for i := range n {
		pn := types.NewJID(fmt.Sprint(15550000+i), types.DefaultUserServer)
		pairs[pn] = types.NewJID(fmt.Sprint(88800000+i), types.HiddenUserServer)
		token := []byte(fmt.Sprint("pn-token-", i))
		w.secret(token)
		hs.Conversations = append(hs.Conversations, &waHistorySync.Conversation{
			ID: proto.String(pn.String()), TcToken: token,
			TcTokenTimestamp: proto.Uint64(uint64(now - 100)), TcTokenSenderTimestamp: proto.Uint64(uint64(now - 10)),
		})
	}
	mapLIDs(t, db, pairs)
	if err := w.srv.Phone().SendHistorySync(w.ctx, hs, nil); err != nil {
		t.Fatal(err)
	}
	if plugin {
		for i := range n {
			lid := pairs[types.NewJID(fmt.Sprint(15550000+i), types.DefaultUserServer)]
			w.waitToken(lid, []byte(fmt.Sprint("pn-token-", i)))
		}
		w.waitLog(1, "Stored history-sync privacy tokens")
		var underPN int
		if err := db.QueryRow(w.ctx, `SELECT COUNT(*) FROM tctoken_tokens WHERE their_jid LIKE '%@s.whatsapp.net'`).Scan(&underPN); err != nil {
			t.Fatal(err)
		}
		if underPN != 0 {
			t.Errorf("%d tokens stored under a phone number whose LID the map holds", underPN)
		}
	} else {
		eventually(t, "whatsmeow's own write of the blob", func() bool {
			var stored int
			err := db.QueryRow(w.ctx, `SELECT COUNT(*) FROM whatsmeow_privacy_tokens`).Scan(&stored)
			return err == nil && stored == n
		})
	}
	if _, err := db.Exec(w.ctx, `DELETE FROM whatsmeow_lid_map`); err != nil {
		t.Fatal(err)
	}
	cached := 0
	for pn := range pairs {
		if lid, err := w.cli.Store.LIDs.GetLIDForPN(w.ctx, pn); err == nil && !lid.IsEmpty() {
			cached++
		}
	}
	return cached
}
