package wamock

import (
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	waBinary "go.mau.fi/whatsmeow/binary"
)

// testLogWriter sends log lines to t.Log until the test's cleanup stops it.
//
// Server goroutines and whatsmeow's own goroutines can outlive a test by a
// little; t.Log after the test has completed panics, so writes after stop are
// dropped. The lock makes "check stopped, then t.Log" atomic with respect to
// stop, which runs in t.Cleanup, before the test counts as completed.
type testLogWriter struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Helper()
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testLogWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}

// newTestLogger builds the default logger: console format into t.Log. The
// level comes from WAMOCK_LOG_LEVEL (default "warn"). At "debug" every
// stanza in both directions is logged, which floods go test -v and failure
// output alike; it is there for when a test needs the trace.
func newTestLogger(t testing.TB) (zerolog.Logger, *testLogWriter) {
	w := &testLogWriter{t: t}
	level := zerolog.WarnLevel
	if env := os.Getenv("WAMOCK_LOG_LEVEL"); env != "" {
		if parsed, err := zerolog.ParseLevel(env); err == nil {
			level = parsed
		}
	}
	console := zerolog.ConsoleWriter{Out: w, NoColor: true, FormatTimestamp: func(any) string {
		// zerolog's default timestamps have second precision; the time of
		// writing is close enough and shows milliseconds.
		return time.Now().Format("15:04:05.000")
	}}
	return zerolog.New(console).Level(level).With().Timestamp().Logger(), w
}

// maxLoggedXML keeps the prekey upload (hundreds of keys) from flooding logs.
const maxLoggedXML = 4096

func nodeLogString(node *waBinary.Node) string {
	s := XML(node)
	if len(s) > maxLoggedXML {
		s = s[:maxLoggedXML] + "…(truncated)"
	}
	return s
}

const infoLevel = zerolog.InfoLevel

// maxLevel returns the less verbose of two levels.
func maxLevel(a, b zerolog.Level) zerolog.Level {
	if a > b {
		return a
	}
	return b
}
