package tctoken_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/wamock"
)

// The parts of issue 12 measured around the send path rather than on it:
// how long a send can take while a prune runs, and what ingesting a table's
// worth of tokens leaves on the heap. Like scale_bench_test.go, on
// benchRows() stored tokens; bench/run prints their rows.

// benchDB opens a fresh database of the dialect.
func benchDB(b testing.TB, dialect string) *dbutil.Database {
	b.Helper()
	if dialect == "sqlite" {
		return dbtest.SQLite(b)
	}
	return dbtest.Postgres(b)
}

// fillRows writes n tokens for the account, from contacts first..first+n-1
// (the numbering of scaleWorld.fill), stamped ts, into each of tables
// ("tctoken_tokens", "whatsmeow_privacy_tokens"), with multi-row statements
// in one transaction per table.
func fillRows(b testing.TB, db *dbutil.Database, account types.JID, first, n int, ts int64, tables ...string) {
	b.Helper()
	const chunk = 1000
	ctx := context.Background()
	for _, table := range tables {
		var columns string
		switch table {
		case "tctoken_tokens":
			columns = "tctoken_tokens (our_jid, their_jid, token, token_ts, updated_at)"
		case "whatsmeow_privacy_tokens":
			columns = "whatsmeow_privacy_tokens (our_jid, their_jid, token, timestamp)"
		default:
			b.Fatalf("fillRows: unknown table %s", table)
		}
		err := db.DoTxn(ctx, nil, func(ctx context.Context) error {
			values := make([]string, 0, chunk)
			for start := first; start < first+n; start += chunk {
				values = values[:0]
				for i := start; i < min(start+chunk, first+n); i++ {
					if table == "tctoken_tokens" {
						values = append(values, fmt.Sprintf("('%s', '%d@lid', '\\x00', %d, %d)", account, 300000000000000+i, ts, ts))
					} else {
						values = append(values, fmt.Sprintf("('%s', '%d@lid', '\\x00', %d)", account, 300000000000000+i, ts))
					}
				}
				if _, err := db.Exec(ctx, "INSERT INTO "+columns+" VALUES "+strings.Join(values, ", ")); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatalf("fill %s: %v", table, err)
		}
	}
}

// newConnectedScaleWorld is a world (harness_test.go) whose client is
// connected to wamock, with the plugin logging at info level into w.logs
// only, and whose connect-time prune has run.
func newConnectedScaleWorld(b testing.TB, db *dbutil.Database) *world {
	b.Helper()
	w := newBareWorld(b, db, nil)
	w.cli = w.srv.NewClient(w.device, nil)
	var err error
	w.plugin, err = tctoken.Enable(w.ctx, w.cli, w.db,
		tctoken.WithLogger(zerolog.New(w.logs).Level(zerolog.InfoLevel)), tctoken.WithClock(w.clock.Now))
	if err != nil {
		b.Fatalf("Enable: %v", err)
	}
	cli, plugin := w.cli, w.plugin
	b.Cleanup(func() { w.stop(plugin, cli) })
	w.connect()
	w.waitLog(1, "Pruned expired privacy tokens")
	return w
}

// sendSample is one plugin.SendMessage, timed.
type sendSample struct{ start, end time.Time }

func (s sendSample) latency() time.Duration { return s.end.Sub(s.start) }

// sendLoop sends 1:1 messages to one contact back to back until stopped.
type sendLoop struct {
	mu      sync.Mutex
	samples []sendSample
	err     error
	stop    chan struct{}
	done    chan struct{}
}

func startSendLoop(w *world, to types.JID) *sendLoop {
	l := &sendLoop{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			start := time.Now()
			_, err := w.plugin.SendMessage(w.ctx, to, text("during prune"))
			end := time.Now()
			l.mu.Lock()
			l.samples = append(l.samples, sendSample{start, end})
			if err != nil && l.err == nil {
				l.err = err
			}
			l.mu.Unlock()
		}
	}()
	return l
}

// waitFor waits until cond holds over the samples so far.
func (l *sendLoop) waitFor(cond func([]sendSample) bool) {
	for {
		l.mu.Lock()
		ok := cond(l.samples) || l.err != nil
		l.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// finish stops the loop and returns its samples.
func (l *sendLoop) finish(b testing.TB) []sendSample {
	close(l.stop)
	<-l.done
	if l.err != nil {
		b.Fatalf("send during prune: %v", l.err)
	}
	return l.samples
}

// startedAfter says whether a send started after t has completed.
func startedAfter(t time.Time) func([]sendSample) bool {
	return func(samples []sendSample) bool {
		return len(samples) > 0 && samples[len(samples)-1].start.After(t)
	}
}

// overlapping keeps the sends that were in flight at some time in [from, to].
func overlapping(samples []sendSample, from, to time.Time) []time.Duration {
	var out []time.Duration
	for _, s := range samples {
		if s.start.Before(to) && s.end.After(from) {
			out = append(out, s.latency())
		}
	}
	return out
}

func reportLatencies(b *testing.B, latencies []time.Duration) {
	if len(latencies) == 0 {
		b.Fatal("no send overlapped the prune: the benchmark measured nothing")
	}
	slices.Sort(latencies)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(latencies[len(latencies)-1]), "max-send-ms")
	b.ReportMetric(ms(latencies[len(latencies)/2]), "p50-send-ms")
	b.ReportMetric(ms(latencies[len(latencies)*99/100]), "p99-send-ms")
	b.ReportMetric(float64(len(latencies))/float64(b.N), "sends/op")
}

// BenchmarkSendDuringPrune sends 1:1 messages through plugin.SendMessage to
// a wamock contact, back to back, while plugin.PruneExpired runs on a table
// of benchRows() tokens. whatsmeow's session writes inside each send wait
// for SQLite's single write lock, which a prune's statements take.
//
//   - expired-half: half the rows are expired on the receiver side (they are
//     written again before each prune, with the timer stopped);
//   - nothing: nothing has expired; prunes run back to back until 20 sends
//     have overlapped them;
//   - no-prune: the same sends with no prune, the floor the other two are
//     read against on a shared machine.
//
// Metrics: max-send-ms and p50-send-ms over the sends in flight while a
// prune ran, prune-ms per prune.
func BenchmarkSendDuringPrune(b *testing.B) {
	forBenchDialects(b, func(b *testing.B, dialect string) {
		w := newConnectedScaleWorld(b, benchDB(b, dialect))
		rows := benchRows()
		now := w.clock.Now()
		valid, expired := now.Add(-time.Hour).Unix(), now.Add(-60*24*time.Hour).Unix()
		// whatsmeow's table holds every token too, as in a real bridge; the
		// plugin's prune leaves it alone.
		fillRows(b, w.db, *w.device.ID, 0, rows, valid, "whatsmeow_privacy_tokens")
		fillRows(b, w.db, *w.device.ID, 0, rows-rows/2, valid, "tctoken_tokens")
		alice := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(alice.LID(), "alice-token")
		// The first send sets up the Signal session and issues our token.
		if _, err := w.plugin.SendMessage(w.ctx, alice.LID(), text("hello")); err != nil {
			b.Fatal(err)
		}
		w.srv.WaitIdle(w.deviceNum, 5*time.Second)

		b.Run("expired-half", func(b *testing.B) {
			var latencies []time.Duration
			var pruneTime time.Duration
			for b.Loop() {
				b.StopTimer()
				fillRows(b, w.db, *w.device.ID, rows-rows/2, rows/2, expired, "tctoken_tokens")
				w.srv.WaitIdle(w.deviceNum, 5*time.Second)
				b.StartTimer()
				loop := startSendLoop(w, alice.LID())
				loop.waitFor(func(s []sendSample) bool { return len(s) >= 3 })
				from := time.Now()
				n, err := w.plugin.PruneExpired(w.ctx)
				to := time.Now()
				loop.waitFor(startedAfter(to))
				samples := loop.finish(b)
				if err != nil || n != int64(rows/2) {
					b.Fatalf("pruned %d of %d: %v", n, rows/2, err)
				}
				pruneTime += to.Sub(from)
				latencies = append(latencies, overlapping(samples, from, to)...)
			}
			reportLatencies(b, latencies)
			b.ReportMetric(float64(pruneTime)/float64(time.Millisecond)/float64(b.N), "prune-ms")
		})
		b.Run("nothing", func(b *testing.B) {
			var latencies []time.Duration
			var pruneTime time.Duration
			prunes := 0
			for b.Loop() {
				loop := startSendLoop(w, alice.LID())
				loop.waitFor(func(s []sendSample) bool { return len(s) >= 3 })
				var overlapped []time.Duration
				var windows [][2]time.Time
				for len(overlapped) < 20 {
					from := time.Now()
					n, err := w.plugin.PruneExpired(w.ctx)
					to := time.Now()
					if err != nil || n != 0 {
						b.Fatalf("pruned %d: %v", n, err)
					}
					prunes++
					pruneTime += to.Sub(from)
					windows = append(windows, [2]time.Time{from, to})
					loop.mu.Lock()
					overlapped = overlappingAny(loop.samples, windows)
					loop.mu.Unlock()
				}
				last := windows[len(windows)-1][1]
				loop.waitFor(startedAfter(last))
				latencies = append(latencies, overlappingAny(loop.finish(b), windows)...)
			}
			reportLatencies(b, latencies)
			b.ReportMetric(float64(pruneTime)/float64(time.Millisecond)/float64(prunes), "prune-ms")
		})
		b.Run("no-prune", func(b *testing.B) {
			var latencies []time.Duration
			for b.Loop() {
				loop := startSendLoop(w, alice.LID())
				loop.waitFor(func(s []sendSample) bool { return len(s) >= 203 })
				for _, s := range loop.finish(b)[3:] {
					latencies = append(latencies, s.latency())
				}
			}
			reportLatencies(b, latencies)
		})
	})
}

// overlappingAny keeps the sends in flight during any of the windows.
func overlappingAny(samples []sendSample, windows [][2]time.Time) []time.Duration {
	var out []time.Duration
	for _, s := range samples {
		for _, win := range windows {
			if s.start.Before(win[1]) && s.end.After(win[0]) {
				out = append(out, s.latency())
				break
			}
		}
	}
	return out
}

// BenchmarkIngestHeap ingests benchRows() tokens through whatsmeow's path
// (the interposer), 1000 per call, and reports how much the live heap grew,
// whatsmeow's caches (its LID map among them) included: heap-MB, after a
// GC on both sides. "whatsmeow" is the same ingest into whatsmeow's own
// store. Contacts come by LID ("lid"), by a phone number whatsmeow has no
// LID for ("pn"), or, as whatsmeow 2025-12 writes the PN chats of a real
// account's history blobs, by a phone number whose LID whatsmeow's LID map
// table holds from an earlier run ("pn-mapped": the plugin's lookups must
// not copy the map into whatsmeow's never-evicting cache).
//
// TCTOKEN_HEAP_PROFILE=dir writes a heap profile of each case into dir
// after the ingest (never into the repository).
func BenchmarkIngestHeap(b *testing.B) {
	forBenchDialects(b, func(b *testing.B, dialect string) {
		for _, by := range []string{"lid", "pn", "pn-mapped"} {
			for _, side := range []string{"plugin", "whatsmeow"} {
				b.Run(by+"/"+side, func(b *testing.B) {
					var grown float64
					for b.Loop() {
						b.StopTimer()
						db := benchDB(b, dialect)
						srv := wamock.NewServer(b)
						device, err := srv.NewDevice(context.Background(), dbtest.WhatsmeowContainer(b, db))
						if err != nil {
							b.Fatal(err)
						}
						cli := srv.NewClient(device, nil)
						var plugin *tctoken.Plugin
						if side == "plugin" {
							if plugin, err = tctoken.Enable(context.Background(), cli, db, tctoken.WithLogger(zerolog.Nop())); err != nil {
								b.Fatal(err)
							}
						}
						tokens := cli.Store.PrivacyTokens
						if by == "pn-mapped" {
							pairs := make(map[types.JID]types.JID, benchRows())
							for i := range benchRows() {
								pairs[ingestJID("pn", i)] = ingestJID("lid", i)
							}
							mapLIDs(b, db, pairs)
						}
						before := liveHeap()
						b.StartTimer()
						ingestChunks(b, tokens, by, benchRows())
						b.StopTimer()
						after := liveHeap()
						grown += float64(int64(after)-int64(before)) / (1 << 20)
						if dir := os.Getenv("TCTOKEN_HEAP_PROFILE"); dir != "" {
							writeHeapProfile(b, filepath.Join(dir, fmt.Sprintf("heap-%s-%s-%s.pprof", dialect, by, side)))
						}
						runtime.KeepAlive(cli)
						if plugin != nil {
							plugin.Close()
						}
						b.StartTimer()
					}
					b.ReportMetric(grown/float64(b.N), "heap-MB")
				})
			}
		}
	})
}

// ingestChunks stores n fresh tokens through store, 1000 per call.
func ingestChunks(b *testing.B, tokens store.PrivacyTokenStore, by string, n int) {
	ctx := context.Background()
	now := time.Now()
	chunk := make([]store.PrivacyToken, 0, 1000)
	for start := 0; start < n; start += cap(chunk) {
		chunk = chunk[:0]
		for i := start; i < min(start+cap(chunk), n); i++ {
			chunk = append(chunk, store.PrivacyToken{User: ingestJID(by, i), Token: []byte("token"), Timestamp: now})
		}
		if err := tokens.PutPrivacyTokens(ctx, chunk...); err != nil {
			b.Fatal(err)
		}
	}
}

// ingestJID is the i-th contact of an ingest by LID or by phone number;
// the i-th phone number pairs with the i-th LID.
func ingestJID(by string, i int) types.JID {
	if by == "lid" {
		return types.NewJID(fmt.Sprint(500000000000000+i), types.HiddenUserServer)
	}
	return types.NewJID(fmt.Sprint(16000000000+i), types.DefaultUserServer)
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	return stats.HeapAlloc
}

func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}
