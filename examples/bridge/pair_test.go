package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow/store/sqlstore"
	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/tctoken/tctoken/wamock"
)

// TestPairQRReachesCodes runs real mode's pairing path against the fake
// server with a fresh, unpaired device, up to the QR codes whatsmeow emits
// when the server asks for a pairing (<iq type="set"><pair-device><ref>…).
//
// wamock does not simulate pairing yet: it ends the connection of a client
// that registers a new device, and the test then skips, saying so. That
// hang-up, right after the Noise handshake, trips data races inside
// whatsmeow 2025-12's socket code, so under -race the test does not run
// until wamock answers with <pair-device>; remove the skip then.
func TestPairQRReachesCodes(t *testing.T) {
	if raceDetector {
		t.Skip("under -race: wamock hangs up on pairing clients, which races inside whatsmeow's socket code")
	}
	srv := wamock.NewServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)

	dsn := "file:" + filepath.Join(t.TempDir(), "bridge.db") + "?_foreign_keys=on"
	container, err := sqlstore.New(ctx, "sqlite3", dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = container.Close() })
	device := container.NewDevice() // unpaired: no ID
	cli := srv.NewClient(device, waLog.Zerolog(log))
	t.Cleanup(cli.Disconnect)

	codes := make(chan string, 8)
	done := make(chan error, 1)
	go func() {
		done <- pair(ctx, cli, pairing{
			ShowQR:   func(code string) { codes <- code },
			ShowCode: func(string) { t.Error("QR pairing must not ask for a pairing code") },
		}, log)
	}()

	select {
	case code := <-codes:
		// whatsmeow's QR payload: ref,noise key,identity key,adv secret.
		parts := strings.Split(code, ",")
		if len(parts) != 4 || parts[0] == "" {
			t.Fatalf("QR payload %q is not ref,noise,identity,adv", code)
		}
		cancel()
		<-done
	case err := <-done:
		for _, serverErr := range srv.Errors() {
			if strings.Contains(serverErr.Error(), "register a new device") {
				t.Skipf("wamock does not simulate pairing yet (server said: %v); pair() returned %v", serverErr, err)
			}
		}
		t.Fatalf("pairing ended before any QR code: %v; server errors: %v", err, srv.Errors())
	case <-ctx.Done():
		t.Fatal("no QR code within 10s")
	}
}
