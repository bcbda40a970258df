package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store/sqlstore"

	"github.com/tctoken/tctoken/wamock"
)

// pairTimeout bounds a whole pairing test: codes, pairing, the second login
// with its prekey upload (about a second under -race on an idle machine,
// far more on a busy one).
const pairTimeout = 60 * time.Second

// unpairedClient opens a bridge database the way real mode does and makes
// a client for its first device, which is new and unpaired. The client
// logs into the server's logger, which tolerates whatsmeow's goroutines
// outliving the test.
func unpairedClient(t *testing.T, srv *wamock.Server) (*whatsmeow.Client, *sqlstore.Container) {
	t.Helper()
	ctx := context.Background()
	db, container, err := openStore(ctx, "file:"+filepath.Join(t.TempDir(), "bridge.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	device, err := container.GetFirstDevice(ctx)
	if err != nil {
		_ = db.Close()
		t.Fatal(err)
	}
	if device.ID != nil {
		t.Fatalf("a new database has device %s", device.ID)
	}
	cli := srv.NewClient(device, nil)
	t.Cleanup(func() {
		// Disconnect only an idle client: whatsmeow races a send in flight
		// against closing its socket.
		num := wamock.PairingDevice
		if cli.Store.ID != nil {
			num = cli.Store.ID.Device
		}
		srv.WaitIdle(num, 2*time.Second)
		cli.Disconnect()
		_ = db.Close()
	})
	return cli, container
}

// runPair runs the bridge's pair() in the background; its outcome arrives
// on the returned channel. ctx ends with the test.
func runPair(t *testing.T, cli *whatsmeow.Client, p pairing) (context.Context, <-chan error) {
	ctx, cancel := context.WithTimeout(context.Background(), pairTimeout)
	t.Cleanup(cancel)
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	done := make(chan error, 1)
	go func() { done <- pair(ctx, cli, p, log) }()
	return ctx, done
}

// checkPaired waits for pair() and checks that the client logged in as the
// device our phone linked, and that the database now holds that device, so
// the next run logs in without pairing.
func checkPaired(t *testing.T, ctx context.Context, srv *wamock.Server, cli *whatsmeow.Client, container *sqlstore.Container, done <-chan error, jid string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("pair: %v; server errors: %v", err, srv.Errors())
		}
	case <-ctx.Done():
		t.Fatalf("pair() did not return within %s", pairTimeout)
	}
	if !cli.IsLoggedIn() || cli.Store.ID == nil || cli.Store.ID.String() != jid {
		t.Fatalf("after pair(): logged in %v as %v, want %s", cli.IsLoggedIn(), cli.Store.ID, jid)
	}
	saved, err := container.GetFirstDevice(context.Background())
	if err != nil || saved.ID == nil || saved.ID.String() != jid {
		t.Fatalf("database holds device %v (%v), want %s", saved, err, jid)
	}
	if errs := srv.Errors(); len(errs) > 0 {
		t.Fatalf("server errors: %v", errs)
	}
}

// TestPairQR runs real mode's pairing path, pair(), against the fake server
// with a new device: whatsmeow shows QR codes for the refs the server sent
// (<iq><pair-device><ref>…), our phone scans the first, and pair() returns
// once the client, paired, has logged in again.
func TestPairQR(t *testing.T) {
	srv := wamock.NewServer(t)
	cli, container := unpairedClient(t, srv)
	codes := make(chan string, 8)
	ctx, done := runPair(t, cli, pairing{
		ShowQR:   func(code string) { codes <- code },
		ShowCode: func(string) { t.Error("QR pairing must not ask for a pairing code") },
	})

	var code string
	select {
	case code = <-codes:
	case err := <-done:
		t.Fatalf("pairing ended before any QR code: %v; server errors: %v", err, srv.Errors())
	case <-ctx.Done():
		t.Fatalf("no QR code within %s", pairTimeout)
	}
	// whatsmeow's QR payload: ref,noise key,identity key,adv secret. Newer
	// versions put it after "…#" in a link and append the client type.
	payload := code
	if i := strings.LastIndexByte(payload, '#'); i >= 0 {
		payload = payload[i+1:]
	}
	parts := strings.Split(payload, ",")
	if (len(parts) != 4 && len(parts) != 5) || !strings.HasPrefix(parts[0], "2@") {
		t.Fatalf("QR payload %q is not ref,noise,identity,adv", code)
	}
	start := time.Now()
	jid, err := srv.Phone().ScanQR(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	checkPaired(t, ctx, srv, cli, container, done, jid.String())
	t.Logf("from scan to logged in: %s", time.Since(start))
}

// TestPairPhoneCode is TestPairQR by pairing code: pair() asks for a code
// once the first QR code proves the connection is up, the user types it on
// the phone, and the phone completes the link.
func TestPairPhoneCode(t *testing.T) {
	srv := wamock.NewServer(t)
	cli, container := unpairedClient(t, srv)
	codes := make(chan string, 1)
	ctx, done := runPair(t, cli, pairing{
		Phone:    "+" + srv.OwnPN().User,
		ShowQR:   func(string) { t.Error("code pairing must not show QR codes") },
		ShowCode: func(code string) { codes <- code },
	})

	var code string
	select {
	case code = <-codes:
	case err := <-done:
		t.Fatalf("pairing ended before a pairing code: %v; server errors: %v", err, srv.Errors())
	case <-ctx.Done():
		t.Fatalf("no pairing code within %s", pairTimeout)
	}
	jid, err := srv.Phone().EnterCode(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	checkPaired(t, ctx, srv, cli, container, done, jid.String())
}
