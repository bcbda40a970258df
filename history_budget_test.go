package tctoken_test

import (
	"context"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
)

// TestHistoryBlobStatements counts the SQL statements the plugin's history
// handler runs for a blob in the real mix (mixBlob: 70% keyed by phone
// number with the blob's mappings, 30% by LID, half of them contacts
// already stored), arriving as whatsmeow 2025-12 delivers it: whatsmeow has
// written the PN chats' tokens first, through the interposer and filed at
// our sender timestamp, and stored the blob's mappings. The handler then
// stores every token under its LID and mends the rows whatsmeow misfiled.
// Its statements must not grow with the blob (issue 20: one mend statement
// per conversation was a thousand round trips on PostgreSQL): a blob of
// 1,000 conversations costs what one of 100 costs.
func TestHistoryBlobStatements(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		log := &statementLog{DatabaseLogger: db.Log}
		db.Log = log
		w := newWorld(t, db)
		const stored = 1000
		fillRows(t, db, *w.device.ID, 0, stored, w.clock.Now().Add(-time.Hour).Unix(), "tctoken_tokens", "whatsmeow_privacy_tokens")
		next, old := stored, 0
		counts := map[int]int{}
		// The first blob also pays what a first write pays once (the probe
		// of whatsmeow's store, the logout fence): not counted.
		for round, n := range []int{10, 100, 1000} {
			now := w.clock.Now().Unix()
			hs, mappings, whatsmeowWrites := mixBlob(n, round+1, now, func(i int) int {
				if i%2 == 0 {
					old++
					return (old - 1) % stored
				}
				next++
				return next
			})
			if err := w.cli.Store.PrivacyTokens.PutPrivacyTokens(w.ctx, whatsmeowWrites.v2025...); err != nil {
				t.Fatal(err)
			}
			if err := w.cli.Store.LIDs.PutManyLIDMappings(w.ctx, mappings); err != nil {
				t.Fatal(err)
			}
			// Only the handler's statements count (its context is marked):
			// not the background work of whatsmeow or the plugin that
			// happens to run meanwhile.
			ctx := context.WithValue(w.ctx, sendMarker{}, true)
			statements := log.record(func() { w.plugin.HandleHistorySync(ctx, hs) })
			counts[n] = summarize(t, "history blob", statements).inSend
			// The handler did its work: every misfiled row mended, and
			// every token under its LID at its own timestamp.
			var misfiled, underLID int
			if err := db.QueryRow(w.ctx, `SELECT COUNT(*) FROM tctoken_tokens WHERE token_ts=$1`, now-60).Scan(&misfiled); err != nil {
				t.Fatal(err)
			}
			if misfiled != 0 {
				t.Errorf("blob of %d: %d rows still hold whatsmeow's misfiled timestamp", n, misfiled)
			}
			if err := db.QueryRow(w.ctx, `SELECT COUNT(*) FROM tctoken_tokens WHERE token_ts=$1 AND their_jid LIKE '%@lid'`, now-1800).Scan(&underLID); err != nil {
				t.Fatal(err)
			}
			if underLID != n {
				t.Errorf("blob of %d: %d tokens under a LID at their own timestamp, want %d", n, underLID, n)
			}
			w.clock.Advance(time.Minute)
		}
		if counts[1000] != counts[100] {
			t.Errorf("a blob of 1,000 conversations took %d statements, one of 100 took %d: the count grows with the blob", counts[1000], counts[100])
		}
	})
}
