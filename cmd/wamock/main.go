// Command wamock runs the fake WhatsApp server of package wamock as a
// process, for whatsmeow clients in other processes (a bridge, a program in
// any language around whatsmeow).
//
// It listens on one loopback address that is both an HTTP CONNECT proxy and
// a JSON control API. The proxy routes web.whatsapp.com:443 and the
// WhatsApp media hosts to the fake server and refuses everything else. The
// server's TLS certificate chains to a test CA written to <dir>/ca.pem (a
// client trusts it through SSL_CERT_FILE), and its Noise certificate chain
// to a root whose public key the client must install in
// whatsmeow.WACertPubKey. On start it prints what a client needs as shell
// assignments and writes them to <dir>/env:
//
//	WAMOCK_PROXY=http://127.0.0.1:PORT
//	WAMOCK_CONTROL=http://127.0.0.1:PORT
//	SSL_CERT_FILE=<dir>/ca.pem
//	WAMOCK_CERT_ROOT=<64 hex digits>
//
// See the README's "wamock as a process" section for the control API.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// envFile is where the client's settings are written, inside the state dir.
const envFile = "env"

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "wamock:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wamock", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "loopback `address` of the CONNECT proxy and the control API")
	dir := fs.String("dir", filepath.Join(os.TempDir(), "wamock"), "state `directory`: the test CA (reused when present) and the env file")
	ownPN := fs.String("own-pn", "", "our account's phone number (default 15550000001)")
	ownLID := fs.String("own-lid", "", "our account's LID user part (default 100000000000001)")
	pairDelay := fs.Duration("pair-restart-delay", 300*time.Millisecond, "wait between the client's pair-device-sign and stream error 515, like a real round trip (mautrix-whatsapp's login needs it)")
	level := fs.String("log-level", "info", "zerolog `level` of the log on stderr (debug logs every stanza)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	lvl, err := zerolog.ParseLevel(*level)
	if err != nil {
		return fmt.Errorf("log level %q: %w", *level, err)
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: stderr, NoColor: true, FormatTimestamp: func(any) string {
		// zerolog's timestamps have second precision; the time of writing
		// shows milliseconds.
		return time.Now().Format("15:04:05.000")
	}}).
		Level(lvl).With().Timestamp().Logger()
	svc, err := startService(config{
		listen: *listen, dir: *dir, ownPN: *ownPN, ownLID: *ownLID, pairRestartDelay: *pairDelay,
		log: log, readHeaderWait: 10 * time.Second,
	})
	if err != nil {
		return err
	}
	defer svc.Close()
	env := svc.env()
	if err = os.WriteFile(filepath.Join(*dir, envFile), []byte(env), 0o644); err != nil {
		return fmt.Errorf("write env file: %w", err)
	}
	fmt.Fprint(stdout, env)
	log.Info().Str("address", svc.listener.Addr().String()).Str("state_dir", *dir).Msg("wamock is listening")

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	log.Info().Msg("wamock is stopping")
	return nil
}
