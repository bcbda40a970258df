package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
	waLog "go.mau.fi/whatsmeow/util/log"
)

// newLogger builds the bridge's logger on w (stderr outside tests): JSON
// lines with --json-logs, for log collectors; otherwise zerolog's console
// format, coloured only on a terminal so that redirected logs stay clean.
func newLogger(w io.Writer, jsonLogs bool, level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("bad --log-level %q: %w", level, err)
	}
	// Every line passes the redacting writer: whatsmeow logs whole stanzas,
	// token bytes included, at debug level.
	var out io.Writer = redactingWriter{w: w}
	if !jsonLogs {
		out = zerolog.ConsoleWriter{Out: redactingWriter{w: w}, TimeFormat: time.TimeOnly, NoColor: !isTerminal(w)}
	}
	return zerolog.New(out).Level(lvl).With().Timestamp().Logger(), nil
}

// isTerminal reports whether w is a character device, without pulling in a
// terminal library for one bit.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// whatsmeowLogger hands whatsmeow a child of the bridge's logger, so that
// its lines share the format and level and say where they come from.
func whatsmeowLogger(log zerolog.Logger) waLog.Logger {
	return waLog.Zerolog(log.With().Str("component", "whatsmeow").Logger())
}
