package tctoken_test

import (
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/wamock"
)

// Issue 19: the pass over whatsmeow's own token table that every bind runs,
// measured around the send path, on benchRows() rows; bench/run prints its
// rows.

// importLimit bounds the wait for a pass over a million rows on a busy
// machine: a deadline, not a measure.
const importLimit = 5 * time.Minute

// newImportWorld is a bridge that ran whatsmeow alone: benchRows() valid
// tokens in whatsmeow's own table (alice's among them), a connected client
// without the plugin, and a Signal session with alice, so that a send to
// her is the send of a running bridge.
func newImportWorld(b *testing.B, dialect string) (*world, types.JID) {
	b.Helper()
	w := newBareWorld(b, benchDB(b, dialect), nil)
	fillRows(b, w.db, *w.device.ID, 0, benchRows(), w.clock.Now().Add(-time.Hour).Unix(), "whatsmeow_privacy_tokens")
	alice := w.srv.AddContact(wamock.ContactOptions{})
	w.startPlain()
	if err := w.cli.Store.PrivacyTokens.PutPrivacyTokens(w.ctx, storeToken(alice.LID(), "alice-token", w.clock.Now())); err != nil {
		b.Fatal(err)
	}
	w.connect()
	w.rawSend(alice.LID())
	w.srv.WaitIdle(w.deviceNum, 5*time.Second)
	return w, alice.LID()
}

// enableQuiet enables the plugin on the current client, logging at info
// level into w.logs only.
func (w *world) enableQuiet(b *testing.B) {
	b.Helper()
	plugin, err := tctoken.Enable(w.ctx, w.cli, w.db,
		tctoken.WithLogger(zerolog.New(w.logs).Level(zerolog.InfoLevel)), tctoken.WithClock(w.clock.Now))
	if err != nil {
		b.Fatalf("Enable: %v", err)
	}
	w.plugin = plugin
	b.Cleanup(plugin.Close)
}

// BenchmarkImportDuringSends: a bridge with benchRows() tokens in whatsmeow's
// own table adds the Enable line, and sends 1:1 messages back to back
// through plugin.SendMessage while the pass over whatsmeow's table runs in
// the background.
//
//   - first: the first Enable on the account, which takes every row over
//     (each iteration on a fresh database, filled with the timer stopped);
//   - again: the next process's Enable over the same rows, whose pass finds
//     nothing to take: what every restart costs;
//   - no-import: the same sends with no pass running, the floor the other
//     two are read against on a shared machine.
//
// Metrics: import-s, from Enable to the end of the pass; max-send-ms and
// p50-send-ms over the sends in flight while it ran.
func BenchmarkImportDuringSends(b *testing.B) {
	forBenchDialects(b, func(b *testing.B, dialect string) {
		b.Run("first", func(b *testing.B) {
			var latencies []time.Duration
			var took time.Duration
			for b.Loop() {
				b.StopTimer()
				w, alice := newImportWorld(b, dialect)
				b.StartTimer()
				from := time.Now()
				w.enableQuiet(b)
				loop := startSendLoop(w, alice)
				eventuallyWithin(b, importLimit, "the first pass", func() bool { return w.logLines("Imported whatsmeow's privacy tokens") > 0 })
				to := time.Now()
				b.StopTimer()
				loop.waitFor(startedAfter(to))
				latencies = append(latencies, overlapping(loop.finish(b), from, to)...)
				took += to.Sub(from)
				if w.logLines("Imported whatsmeow's privacy tokens", `"rows":0`) > 0 {
					b.Fatal("the first pass took nothing over")
				}
				w.stop(w.plugin, w.cli)
				b.StartTimer()
			}
			reportLatencies(b, latencies)
			b.ReportMetric(took.Seconds()/float64(b.N), "import-s")
		})

		w, alice := newImportWorld(b, dialect)
		w.enableQuiet(b)
		eventuallyWithin(b, importLimit, "the first pass", func() bool { return w.logLines("Imported whatsmeow's privacy tokens") > 0 })
		b.Run("again", func(b *testing.B) {
			var latencies []time.Duration
			var took time.Duration
			for b.Loop() {
				b.StopTimer()
				passes := w.logLines("Imported whatsmeow's privacy tokens")
				w.reloadDevice()
				w.cli = w.srv.NewClient(w.device, nil)
				b.StartTimer()
				start := time.Now()
				w.enableQuiet(b)
				w.connect()
				from := time.Now()
				loop := startSendLoop(w, alice)
				eventuallyWithin(b, importLimit, "the next pass", func() bool { return w.logLines("Imported whatsmeow's privacy tokens") > passes })
				to := time.Now()
				b.StopTimer()
				loop.waitFor(startedAfter(to))
				latencies = append(latencies, overlapping(loop.finish(b), from, to)...)
				took += to.Sub(start)
				b.StartTimer()
			}
			if len(latencies) == 0 {
				// The pass ended before the client had connected: nothing
				// to report but its time.
				latencies = append(latencies, 0)
			}
			reportLatencies(b, latencies)
			b.ReportMetric(took.Seconds()/float64(b.N), "import-s")
		})
		b.Run("no-import", func(b *testing.B) {
			var latencies []time.Duration
			for b.Loop() {
				loop := startSendLoop(w, alice)
				loop.waitFor(func(s []sendSample) bool { return len(s) >= 203 })
				for _, s := range loop.finish(b)[3:] {
					latencies = append(latencies, s.latency())
				}
			}
			reportLatencies(b, latencies)
		})
	})
}
