package tctoken_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// The real shapes of issue 20: history blobs and ingest batches keyed by
// phone number, as an account with older chats sends them, beside the
// LID-keyed ones of scale_bench_test.go.

// contactPN is the phone number paired with contact n (whose LID is
// 300000000000000+n, the numbering of scaleWorld.fill).
func contactPN(n int) types.JID {
	return types.NewJID(strconv.Itoa(100000000000+n), types.DefaultUserServer)
}

func contactLID(n int) types.JID {
	return types.NewJID(strconv.Itoa(300000000000000+n), types.HiddenUserServer)
}

// tokenBytes is a distinct token for contact n in round r: real tokens
// differ from contact to contact and from one issue to the next.
func tokenBytes(n, r int) []byte {
	token := make([]byte, 24)
	binary.BigEndian.PutUint64(token, uint64(n))
	binary.BigEndian.PutUint64(token[8:], uint64(r))
	copy(token[16:], "tctoken!")
	return token
}

// mapLIDs writes PN->LID pairs straight into whatsmeow's LID map table, as
// an earlier run of the bridge left them: known to the database, not to
// whatsmeow's in-memory cache.
func mapLIDs(b testing.TB, db *dbutil.Database, pairs map[types.JID]types.JID) {
	b.Helper()
	const chunk = 1000
	values := make([]string, 0, chunk)
	flush := func() {
		if len(values) == 0 {
			return
		}
		query := "INSERT INTO whatsmeow_lid_map (lid, pn) VALUES " + strings.Join(values, ", ") + " ON CONFLICT DO NOTHING"
		if _, err := db.Exec(context.Background(), query); err != nil {
			b.Fatalf("fill whatsmeow_lid_map: %v", err)
		}
		values = values[:0]
	}
	for pn, lid := range pairs {
		values = append(values, fmt.Sprintf("('%s', '%s')", lid.User, pn.User))
		if len(values) == chunk {
			flush()
		}
	}
	flush()
}

// historyMix builds a history blob of n conversations in the shape a real
// account's blob has (see mixBlob). Half the conversations are contacts
// the table already holds a row for (from scaleWorld.fill, an hour old):
// the blob updates those and inserts the rest.
func (w *scaleWorld) historyMix(n int) (*waHistorySync.HistorySync, []store.LIDMapping, blobWrites) {
	w.round++
	return mixBlob(n, w.round, w.now.Unix(), func(i int) int {
		if i%2 == 0 {
			w.old++
			return (w.old - 1) % benchRows()
		}
		w.next++
		return w.next
	})
}

// blobWrites are the writes whatsmeow makes into its own store for a
// history blob, by version.
type blobWrites struct {
	// v2025 is what whatsmeow 2025-12 writes: the tokens of the chats keyed
	// by phone number only, under the number, filed at the sender timestamp.
	v2025 []store.PrivacyToken
	// same is every conversation's token, under the LID where the blob maps
	// the number, at the token timestamp: the tokens the plugin stores, and
	// the write of whatsmeow 33cfac51 (the version the bridges pin), which
	// keeps the token of every chat.
	same []store.PrivacyToken
}

// mixBlob is a history blob of n conversations, the i-th with contact
// contactOf(i), in the shape of a real account's: 70% keyed by phone number,
// with the blob's phoneNumberToLidMappings for them, 30% by LID; every token
// distinct (round tells blobs apart); the token timestamp half an hour
// before now and our sender timestamp a minute before. It also returns the
// LID mappings and the tokens whatsmeow writes for the blob itself.
func mixBlob(n, round int, now int64, contactOf func(i int) int) (*waHistorySync.HistorySync, []store.LIDMapping, blobWrites) {
	hs := &waHistorySync.HistorySync{SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum()}
	var mappings []store.LIDMapping
	var whatsmeowWrites blobWrites
	tokenTS, senderTS := now-1800, now-60
	for i := range n {
		contact := contactOf(i)
		chat := contactLID(contact)
		if i%10 < 7 {
			chat = contactPN(contact)
			hs.PhoneNumberToLidMappings = append(hs.PhoneNumberToLidMappings, &waHistorySync.PhoneNumberToLIDMapping{
				PnJID: proto.String(chat.String()), LidJID: proto.String(contactLID(contact).String()),
			})
			mappings = append(mappings, store.LIDMapping{LID: contactLID(contact), PN: chat})
		}
		token := tokenBytes(contact, round)
		hs.Conversations = append(hs.Conversations, &waHistorySync.Conversation{
			ID: proto.String(chat.String()), TcToken: token,
			TcTokenTimestamp:       proto.Uint64(uint64(tokenTS)),
			TcTokenSenderTimestamp: proto.Uint64(uint64(senderTS)),
		})
		if chat.Server == types.DefaultUserServer {
			whatsmeowWrites.v2025 = append(whatsmeowWrites.v2025, store.PrivacyToken{User: chat, Token: token, Timestamp: time.Unix(senderTS, 0)})
		}
		whatsmeowWrites.same = append(whatsmeowWrites.same, store.PrivacyToken{User: contactLID(contact), Token: token, Timestamp: time.Unix(tokenTS, 0)})
	}
	return hs, mappings, whatsmeowWrites
}

// BenchmarkHistorySyncMix stores history blobs of 1,000 and 10,000
// conversations in the shape a real account sends (see historyMix: 70%
// keyed by phone number with the blob's LID mappings, 30% by LID, distinct
// tokens, token and sender timestamps apart, half of them updates of rows
// already stored), on a table of benchRows() tokens. "plugin" is the
// plugin's handler of the blob (HandleHistorySync: its tables and the
// write-through to whatsmeow's). "whatsmeow" is whatsmeow's own store
// writing the same tokens, every conversation's under its LID, as
// whatsmeow 33cfac51's history handler does; "whatsmeow-2025-12" writes
// what whatsmeow 2025-12's handler writes, the chats keyed by phone number
// only. Before each, whatsmeow has stored the blob's LID mappings, as its
// own history handler does (timer stopped). whatsmeow's own write of the
// blob does not run on the plugin's side, as when it lands under the LIDs
// the interposer found: no row waits under a phone number, so the blob
// needs no mend (TestHistoryBlobStatements covers the blob whose misfiled
// rows are there). stmts/op counts every SQL statement the side ran,
// through dbutil's logger.
func BenchmarkHistorySyncMix(b *testing.B) {
	forBenchDialects(b, func(b *testing.B, dialect string) {
		w := newScaleWorld(b, dialect)
		for _, n := range []int{1000, 10000} {
			b.Run(fmt.Sprintf("convs=%d/plugin", n), func(b *testing.B) {
				statements := 0
				for b.Loop() {
					b.StopTimer()
					hs, mappings, _ := w.historyMix(n)
					w.storeMappings(b, mappings)
					b.StartTimer()
					statements += len(w.log.record(func() { w.plugin.HandleHistorySync(w.ctx, hs) }))
				}
				b.ReportMetric(float64(statements)/float64(b.N), "stmts/op")
			})
			for _, side := range []struct {
				name   string
				tokens func(blobWrites) []store.PrivacyToken
			}{
				{"whatsmeow", func(w blobWrites) []store.PrivacyToken { return w.same }},
				{"whatsmeow-2025-12", func(w blobWrites) []store.PrivacyToken { return w.v2025 }},
			} {
				b.Run(fmt.Sprintf("convs=%d/%s", n, side.name), func(b *testing.B) {
					statements := 0
					for b.Loop() {
						b.StopTimer()
						_, mappings, writes := w.historyMix(n)
						w.storeMappings(b, mappings)
						tokens := side.tokens(writes)
						b.StartTimer()
						statements += len(w.log.record(func() {
							if err := w.plain.PutPrivacyTokens(w.ctx, tokens...); err != nil {
								b.Fatal(err)
							}
						}))
					}
					b.ReportMetric(float64(statements)/float64(b.N), "stmts/op")
				})
			}
		}
	})
}

// storeMappings stores LID mappings through whatsmeow's LID store, as
// whatsmeow's history handler does with a blob's.
func (w *scaleWorld) storeMappings(b *testing.B, mappings []store.LIDMapping) {
	if err := w.lids.PutManyLIDMappings(w.ctx, mappings); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkIngestPN stores tokens through whatsmeow's path (the
// interposer) from contacts keyed by phone number whose LIDs whatsmeow's
// LID map holds (in the database, from an earlier run: not in its
// in-memory cache): 1000 per call, as whatsmeow 2025-12 writes a history
// blob's PN chats, and 1 per call, as a privacy_token notification from a
// PN-addressed contact. Distinct tokens, fresh contacts. "whatsmeow" is the
// same ingest into whatsmeow's own store, which files them under the
// phone numbers without a lookup.
func BenchmarkIngestPN(b *testing.B) {
	forBenchDialects(b, func(b *testing.B, dialect string) {
		w := newScaleWorld(b, dialect)
		for _, per := range []int{1000, 1} {
			for _, side := range []struct {
				name  string
				store store.PrivacyTokenStore
			}{{"plugin", w.ours}, {"whatsmeow", w.plain}} {
				b.Run(fmt.Sprintf("per-call=%d/%s", per, side.name), func(b *testing.B) {
					for b.Loop() {
						b.StopTimer()
						tokens := w.freshPN(b, per)
						b.StartTimer()
						if err := side.store.PutPrivacyTokens(w.ctx, tokens...); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(per*b.N)/b.Elapsed().Seconds(), "tokens/s")
				})
			}
		}
	})
}

// freshPN returns n tokens from new contacts by phone number, their LIDs
// written into whatsmeow's LID map table.
func (w *scaleWorld) freshPN(b *testing.B, n int) []store.PrivacyToken {
	tokens := make([]store.PrivacyToken, n)
	pairs := make(map[types.JID]types.JID, n)
	for i := range tokens {
		w.next++
		pn := contactPN(w.next)
		pairs[pn] = contactLID(w.next)
		tokens[i] = store.PrivacyToken{User: pn, Token: tokenBytes(w.next, 0), Timestamp: w.now}
	}
	mapLIDs(b, w.db, pairs)
	return tokens
}
