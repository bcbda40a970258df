package tctoken_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/wamock"
)

// The scale benchmarks (issue 12) measure the plugin beside plain whatsmeow
// in the same run, on a table already holding benchRows() tokens for the
// account (TCTOKEN_BENCH_ROWS, default 100,000; the figures are at
// 1,000,000). Each pair is a sub-benchmark "plugin" and "whatsmeow", so
// benchstat shows them side by side; bench/run prints the ratios.

func benchRows() int {
	if n, err := strconv.Atoi(os.Getenv("TCTOKEN_BENCH_ROWS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// scaleWorld is an enabled plugin on a logged-in (not connected) device,
// and whatsmeow's own token store it interposes on.
type scaleWorld struct {
	ctx    context.Context
	db     *dbutil.Database
	plugin *tctoken.Plugin
	ours   store.PrivacyTokenStore // the interposer: what whatsmeow calls
	plain  store.PrivacyTokenStore // whatsmeow's own store
	lids   store.LIDStore          // whatsmeow's LID map
	log    *statementLog           // every statement, when recording
	now    time.Time
	next   int // the next unused contact number
	cold   int // how many cold reads so far
	old    int // the next stored contact a history blob updates
	round  int // history blobs built so far
}

func newScaleWorld(b *testing.B, dialect string) *scaleWorld {
	b.Helper()
	db := benchDB(b, dialect)
	// Installed before whatsmeow's container is made: its Child database
	// takes the logger with it.
	log := &statementLog{DatabaseLogger: db.Log}
	db.Log = log
	ctx := context.Background()
	srv := wamock.NewServer(b)
	device, err := srv.NewDevice(ctx, dbtest.WhatsmeowContainer(b, db))
	if err != nil {
		b.Fatal(err)
	}
	cli := srv.NewClient(device, nil)
	w := &scaleWorld{ctx: ctx, db: db, plain: cli.Store.PrivacyTokens, lids: cli.Store.LIDs, log: log, now: time.Now()}
	if w.plugin, err = tctoken.Enable(ctx, cli, db); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(w.plugin.Close)
	w.ours = cli.Store.PrivacyTokens
	w.fill(b, *device.ID, benchRows())
	return w
}

// fill writes n tokens for the account into both tables at once, with
// multi-row statements: the benchmarks' scale data, never committed.
func (w *scaleWorld) fill(b *testing.B, account types.JID, n int) {
	b.Helper()
	const chunk = 1000
	ts := w.now.Add(-time.Hour).Unix()
	for _, table := range []string{"tctoken_tokens (our_jid, their_jid, token, token_ts, updated_at)", "whatsmeow_privacy_tokens (our_jid, their_jid, token, timestamp)"} {
		err := w.db.DoTxn(w.ctx, nil, func(ctx context.Context) error {
			for start := 0; start < n; start += chunk {
				var values []string
				for i := start; i < min(start+chunk, n); i++ {
					if strings.HasPrefix(table, "tctoken") {
						values = append(values, fmt.Sprintf("('%s', '%d@lid', '\\x00', %d, %d)", account, 300000000000000+i, ts, ts))
					} else {
						values = append(values, fmt.Sprintf("('%s', '%d@lid', '\\x00', %d)", account, 300000000000000+i, ts))
					}
				}
				if _, err := w.db.Exec(ctx, "INSERT INTO "+table+" VALUES "+strings.Join(values, ", ")); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatalf("fill %s: %v", table, err)
		}
	}
	w.next = n
}

// fresh returns n tokens from contacts not yet stored.
func (w *scaleWorld) fresh(n int) []store.PrivacyToken {
	tokens := make([]store.PrivacyToken, n)
	for i := range tokens {
		w.next++
		tokens[i] = store.PrivacyToken{User: types.NewJID(strconv.Itoa(300000000000000+w.next), types.HiddenUserServer), Token: []byte("token"), Timestamp: w.now}
	}
	return tokens
}

func forBenchDialects(b *testing.B, fn func(b *testing.B, dialect string)) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		b.Run(dialect, func(b *testing.B) { fn(b, dialect) })
	}
}

// BenchmarkIngest stores tokens through whatsmeow's path (the interposer),
// 1000 per call as a history sync does and 1 per call as a notification
// does, beside whatsmeow's own store.
func BenchmarkIngest(b *testing.B) {
	forBenchDialects(b, func(b *testing.B, dialect string) {
		w := newScaleWorld(b, dialect)
		for _, per := range []int{1000, 1} {
			for _, side := range []struct {
				name  string
				store store.PrivacyTokenStore
			}{{"plugin", w.ours}, {"whatsmeow", w.plain}} {
				b.Run(fmt.Sprintf("per-call=%d/%s", per, side.name), func(b *testing.B) {
					for b.Loop() {
						if err := side.store.PutPrivacyTokens(w.ctx, w.fresh(per)...); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(per*b.N)/b.Elapsed().Seconds(), "tokens/s")
				})
			}
		}
	})
}

// BenchmarkColdLookup reads contacts the cache has never seen, through the
// interposer, beside whatsmeow's own read.
func BenchmarkColdLookup(b *testing.B) {
	forBenchDialects(b, func(b *testing.B, dialect string) {
		w := newScaleWorld(b, dialect)
		for _, side := range []struct {
			name  string
			store store.PrivacyTokenStore
		}{{"plugin", w.ours}, {"whatsmeow", w.plain}} {
			b.Run(side.name, func(b *testing.B) {
				for b.Loop() {
					// A contact not read for a long while: the plugin's cache
					// (4096 entries) never helps, across runs too.
					w.cold++
					jid := types.NewJID(strconv.Itoa(300000000000000+(w.cold*7919)%benchRows()), types.HiddenUserServer)
					if token, err := side.store.GetPrivacyToken(w.ctx, jid); err != nil || token == nil {
						b.Fatalf("read %s: %v, %v: the benchmark would measure nothing", jid, token, err)
					}
				}
			})
		}
	})
}

// BenchmarkHistorySync1000 stores the tokens of a 1,000-conversation history
// blob: the plugin's handler beside whatsmeow 2025-12's own write of the
// same tokens.
func BenchmarkHistorySync1000(b *testing.B) {
	forBenchDialects(b, func(b *testing.B, dialect string) {
		w := newScaleWorld(b, dialect)
		blob := func() (*waHistorySync.HistorySync, []store.PrivacyToken) {
			tokens := w.fresh(1000)
			hs := &waHistorySync.HistorySync{SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum()}
			for _, token := range tokens {
				hs.Conversations = append(hs.Conversations, &waHistorySync.Conversation{
					ID: proto.String(token.User.String()), TcToken: token.Token,
					TcTokenTimestamp:       proto.Uint64(uint64(w.now.Unix() - 3600)),
					TcTokenSenderTimestamp: proto.Uint64(uint64(w.now.Unix() - 60)),
				})
			}
			return hs, tokens
		}
		b.Run("plugin", func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				hs, _ := blob()
				b.StartTimer()
				w.plugin.HandleHistorySync(w.ctx, hs)
			}
		})
		b.Run("whatsmeow", func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				_, tokens := blob()
				b.StartTimer()
				if err := w.plain.PutPrivacyTokens(w.ctx, tokens...); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkPruneNothing prunes a full table in which nothing has expired:
// what every connect costs.
func BenchmarkPruneNothing(b *testing.B) {
	forBenchDialects(b, func(b *testing.B, dialect string) {
		w := newScaleWorld(b, dialect)
		for b.Loop() {
			if n, err := w.plugin.PruneExpired(w.ctx); err != nil || n != 0 {
				b.Fatalf("pruned %d: %v", n, err)
			}
		}
	})
}
