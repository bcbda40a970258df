package wamock

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
)

// firstQR connects an unpaired client with a QR channel and returns the
// channel and its first item, which must be a code.
func firstQR(t *testing.T, srv *Server, cli *whatsmeow.Client) (<-chan whatsmeow.QRChannelItem, string) {
	t.Helper()
	// Ending the context stops whatsmeow's QR emitter, which would
	// otherwise wait a minute for the next code, and makes it disconnect
	// the client: only do that once the client is idle. This cleanup runs
	// before QuickUnpairedClient's.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		srv.WaitIdle(PairingDevice, 2*time.Second)
		cancel()
	})
	qrChan, err := cli.GetQRChannel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err = cli.Connect(); err != nil {
		t.Fatal(err)
	}
	select {
	case item := <-qrChan:
		if item.Event != whatsmeow.QRChannelEventCode {
			t.Fatalf("first QR channel item is %q (%v), want a code", item.Event, item.Error)
		}
		return qrChan, item.Code
	case <-time.After(5 * time.Second):
		t.Fatalf("no QR code within 5s; server errors: %v", srv.Errors())
	}
	return nil, ""
}

// sentPairDevice returns the refs of the <pair-device> the server sent.
func sentPairDevice(t *testing.T, srv *Server) (id string, refs []string) {
	t.Helper()
	for _, n := range srv.Sent() {
		if n.Tag != "iq" {
			continue
		}
		pd, ok := n.GetOptionalChildByTag("pair-device")
		if !ok {
			continue
		}
		for _, ref := range pd.GetChildren() {
			b, _ := ref.Content.([]byte)
			refs = append(refs, string(b))
		}
		return strAttr(n, "id"), refs
	}
	t.Fatal("server sent no <pair-device>")
	return "", nil
}

func TestPairQRCodes(t *testing.T) {
	srv := NewServer(t)
	cli, _ := srv.QuickUnpairedClient(t)
	_, code := firstQR(t, srv, cli)

	id, refs := sentPairDevice(t, srv)
	if len(refs) != pairRefCount {
		t.Fatalf("pair-device has %d refs, want %d", len(refs), pairRefCount)
	}
	// whatsmeow's QR payload: ref,noise key,identity key,adv secret. Newer
	// versions put it after "…#" in a link and append the client type.
	if i := strings.LastIndexByte(code, '#'); i >= 0 {
		code = code[i+1:]
	}
	parts := strings.Split(code, ",")
	if (len(parts) != 4 && len(parts) != 5) || parts[0] != refs[0] {
		t.Fatalf("QR code %q does not start with the first ref %q", code, refs[0])
	}
	if want := base64.StdEncoding.EncodeToString(cli.Store.NoiseKey.Pub[:]); parts[1] != want {
		t.Fatalf("QR noise key %s, want %s", parts[1], want)
	}
	if want := base64.StdEncoding.EncodeToString(cli.Store.IdentityKey.Pub[:]); parts[2] != want {
		t.Fatalf("QR identity key %s, want %s", parts[2], want)
	}
	// The client acknowledged <pair-device> with an empty result.
	ack := srv.WaitFor(t, "result for pair-device", func(n *waBinary.Node) bool {
		return n.Tag == "iq" && strAttr(n, "type") == "result" && strAttr(n, "id") == id
	}, time.Second)
	if from, _ := srv.ReceivedFrom(ack); from != PairingDevice {
		t.Fatalf("pairing stanza filed under device %d, want %d", from, PairingDevice)
	}
	if got := srv.ConnectedDevices(); len(got) != 0 {
		t.Fatalf("an unpaired client counts as logged in: %v", got)
	}
	if errs := srv.Errors(); len(errs) > 0 {
		t.Fatalf("server errors: %v", errs)
	}
}

func TestPairQRFull(t *testing.T) {
	srv := NewServer(t)
	cli, container := srv.QuickUnpairedClient(t)
	paired := make(chan *events.PairSuccess, 1)
	cli.AddEventHandler(func(evt any) {
		if e, ok := evt.(*events.PairSuccess); ok {
			paired <- e
		}
	})
	watch := watchAppState(t, cli)
	start := time.Now()
	jid := srv.ConnectAndPair(t, cli)
	t.Logf("paired and logged in within %s", time.Since(start))

	select {
	case evt := <-paired:
		if evt.ID != jid || evt.LID.User != srv.OwnLID().User || evt.LID.Device != jid.Device || evt.Platform != PairingPlatform {
			t.Fatalf("PairSuccess %+v, want ID %s", evt, jid)
		}
	default:
		t.Fatal("no events.PairSuccess")
	}
	if jid.User != srv.OwnPN().User || jid.Device == 0 {
		t.Fatalf("paired as %s", jid)
	}
	if !cli.IsLoggedIn() || cli.Store.ID == nil || *cli.Store.ID != jid {
		t.Fatalf("client logged in %v as %v, want %s", cli.IsLoggedIn(), cli.Store.ID, jid)
	}
	// whatsmeow saved the device: a restart would log in without pairing.
	saved, err := container.GetDevice(context.Background(), jid)
	if err != nil || saved == nil {
		t.Fatalf("paired device not saved: %v, %v", saved, err)
	}
	if got := srv.ConnectedDevices(); len(got) != 1 || got[0] != jid.Device {
		t.Fatalf("connected devices %v, want [%d]", got, jid.Device)
	}
	// It uploaded prekeys, so contacts can reach it, and it can send.
	srv.WaitFor(t, "prekey upload", IsIQ("encrypt", "set"), time.Second)
	alice := srv.AddContact(ContactOptions{})
	if _, err = cli.SendMessage(context.Background(), alice.PN(), &waE2E.Message{Conversation: proto.String("paired")}); err != nil {
		t.Fatal(err)
	}
	msg := srv.WaitFor(t, "message to alice", IsMessageTo(alice.PN()), time.Second)
	if got, err := alice.Decrypt(msg); err != nil || got.GetConversation() != "paired" {
		t.Fatalf("alice got %v, %v", got, err)
	}
	// The phone has no session with a paired device (NewDevice sets one up,
	// pairing does not): it starts one from the uploaded prekeys, as the
	// real phone does when it shares the app state keys after a pairing.
	must(t, srv.Phone().ShareAppStateKeys(context.Background()))
	watch.waitComplete(t, appstate.WAPatchRegularHigh)
	if errs := srv.Errors(); len(errs) > 0 {
		t.Fatalf("server errors: %v", errs)
	}
}

func TestPairPhoneCode(t *testing.T) {
	srv := NewServer(t)
	cli, _ := srv.QuickUnpairedClient(t)
	qrChan, _ := firstQR(t, srv, cli)
	connected := make(chan struct{}, 1)
	cli.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.Connected); ok {
			connected <- struct{}{}
		}
	})
	// A deadline, not a measure: pairing and the reconnect after it take
	// seconds on a loaded 2-core CI machine.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	// Only our own account's number can be linked.
	if _, err := cli.PairPhone(ctx, "+1 555 999 9999", true, whatsmeow.PairClientChrome, "Chrome (Linux)"); err == nil {
		t.Fatal("PairPhone for a number that is not our account succeeded")
	}
	code, err := cli.PairPhone(ctx, "+"+srv.OwnPN().User, true, whatsmeow.PairClientChrome, "Chrome (Linux)")
	if err != nil {
		t.Fatal(err)
	}
	if len(code) != 9 || code[4] != '-' {
		t.Fatalf("pairing code %q is not XXXX-XXXX", code)
	}
	start := time.Now()
	jid, err := srv.Phone().EnterCode(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case item := <-qrChan:
		if item != whatsmeow.QRChannelSuccess {
			t.Fatalf("QR channel said %q (%v), want success", item.Event, item.Error)
		}
	case <-ctx.Done():
		t.Fatal("no pairing success")
	}
	select {
	case <-connected:
	case <-ctx.Done():
		t.Fatalf("paired client did not log in; server errors: %v", srv.Errors())
	}
	t.Logf("code pairing and login took %s", time.Since(start))
	if *cli.Store.ID != jid || !cli.IsLoggedIn() {
		t.Fatalf("client is %v (logged in %v), want %s", cli.Store.ID, cli.IsLoggedIn(), jid)
	}
	if errs := srv.Errors(); len(errs) > 0 {
		t.Fatalf("server errors: %v", errs)
	}
}

func TestPairPhoneWrongCode(t *testing.T) {
	srv := NewServer(t)
	cli, _ := srv.QuickUnpairedClient(t)
	firstQR(t, srv, cli)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	code, err := cli.PairPhone(ctx, srv.OwnPN().User, true, whatsmeow.PairClientChrome, "Chrome (Linux)")
	if err != nil {
		t.Fatal(err)
	}
	wrong := "ZZZZ-ZZZZ"
	if code == wrong {
		wrong = "YYYY-YYYY"
	}
	if _, err = srv.Phone().EnterCode(ctx, wrong); err == nil || !strings.Contains(err.Error(), "wrong pairing code") {
		t.Fatalf("EnterCode with a wrong code: %v, want a key bundle error", err)
	}
	if cli.Store.ID != nil {
		t.Fatalf("client paired as %s with a wrong code", cli.Store.ID)
	}
}

func TestScanQRChecksTheCode(t *testing.T) {
	srv := NewServer(t)
	cli, _ := srv.QuickUnpairedClient(t)
	_, code := firstQR(t, srv, cli)
	parts := strings.Split(code, ",")
	other := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for name, bad := range map[string]string{
		"unknown ref":   strings.Join([]string{"2@nope", parts[1], parts[2], parts[3]}, ","),
		"foreign noise": strings.Join([]string{parts[0], other, parts[2], parts[3]}, ","),
		"foreign ident": strings.Join([]string{parts[0], parts[1], other, parts[3]}, ","),
		"not a QR code": "hello",
	} {
		if _, err := srv.Phone().ScanQR(t.Context(), bad); err == nil {
			t.Errorf("%s: ScanQR accepted %q", name, bad)
		}
	}
	// A wrong adv secret is only caught by the client (HMAC mismatch).
	badAdv := strings.Join([]string{parts[0], parts[1], parts[2], other}, ",")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := srv.Phone().ScanQR(ctx, badAdv); err == nil || !strings.Contains(err.Error(), "hmac-mismatch") {
		t.Fatalf("ScanQR with a wrong adv secret: %v, want the client's hmac-mismatch", err)
	}
	if got := srv.OwnDeviceJIDs(); len(got) != 0 {
		t.Fatalf("failed pairing left devices %v", got)
	}
}
