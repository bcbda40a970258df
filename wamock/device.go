package wamock

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // QuickClient's SQLite container
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"
	"google.golang.org/protobuf/proto"
)

// ConnectTimeout is how long ConnectAndWait and QuickClient wait for
// events.Connected. A fresh device first generates and uploads its
// prekeys, which under the race detector on a busy 2-core machine took
// longer than 10 s.
var ConnectTimeout = 30 * time.Second

// uploadedPreKey is a one-time prekey our client uploaded.
type uploadedPreKey struct {
	id  uint32
	pub [32]byte
}

// ownDevice is what the server knows about one companion device of our
// account: the keys it uploaded (which contacts and the phone need to start
// Signal sessions with it) and the stanzas waiting for it to come online.
type ownDevice struct {
	num uint16

	hasKeys        bool
	registrationID uint32
	identityPub    [32]byte
	signedID       uint32
	signedPub      [32]byte
	signedSig      [64]byte
	preKeys        []uploadedPreKey

	// pending holds stanzas addressed to the device while it was offline;
	// they are flushed once it has logged in again.
	pending []waBinary.Node
}

// takeBundle builds a prekey bundle for the device, consuming one uploaded
// one-time prekey like the real server does. The caller holds s.mu.
func (d *ownDevice) takeBundle() (*prekey.Bundle, error) {
	b, err := d.bundleKeys()
	if err != nil {
		return nil, err
	}
	return b.bundle(uint32(d.num)), nil
}

// deviceConnected registers a device number that logged in.
func (s *Server) deviceConnected(num uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.devices[num]; !ok {
		s.devices[num] = &ownDevice{num: num}
	}
	if num >= s.nextDevice {
		s.nextDevice = num + 1
	}
}

// NewDevice creates a logged-in device store for our account in container,
// saves it, and stores our own LID<->PN mapping. Each call takes the next
// free device number.
func (s *Server) NewDevice(ctx context.Context, container *sqlstore.Container) (*store.Device, error) {
	num := s.allocateDevice()
	dev := container.NewDevice()
	jid := s.ownPN
	jid.Device = num
	lid := s.ownLID
	lid.Device = num
	dev.ID = &jid
	// whatsmeow compares the store's LID with the one in <success>, and
	// skips its own device when fanning out a message only if this is the
	// device JID; both therefore carry the device number.
	dev.LID = lid
	dev.PushName = s.pushName
	dev.Platform = "wamock"
	if s.lidMigrated {
		dev.LIDMigrationTimestamp = time.Now().Add(-time.Hour).Unix()
	}
	account, err := s.makeAccount(num)
	if err != nil {
		return nil, err
	}
	dev.Account = account
	if err = dev.Save(ctx); err != nil {
		return nil, fmt.Errorf("wamock: save device %s: %w", jid, err)
	}
	if err = dev.LIDs.PutLIDMapping(ctx, s.ownLID, s.ownPN); err != nil {
		return nil, fmt.Errorf("wamock: store own LID mapping: %w", err)
	}
	// Pairing stores the primary device's identity; doing the same means our
	// phone's first message is checked against a known key.
	phoneLID := s.ownLID
	if err = dev.Identities.PutIdentity(ctx, phoneLID.SignalAddress().String(), [32]byte(s.phone.peer.identityPub())); err != nil {
		return nil, fmt.Errorf("wamock: store phone identity: %w", err)
	}
	if err = s.phone.startSession(ctx, dev); err != nil {
		return nil, err
	}
	if !s.freshDevices {
		if err = s.preRegisterKeys(ctx, dev, num); err != nil {
			return nil, err
		}
	}
	return dev, nil
}

// preRegisterKeys generates a batch of prekeys in the store, marks them
// uploaded and gives them to the server, as if the device had uploaded them
// in an earlier session. whatsmeow then skips its initial upload of 812
// prekeys, which is slow under the race detector.
func (s *Server) preRegisterKeys(ctx context.Context, dev *store.Device, num uint16) error {
	preKeys, err := dev.PreKeys.GetOrGenPreKeys(ctx, whatsmeow.WantedPreKeyCount)
	if err != nil {
		return fmt.Errorf("wamock: generate prekeys: %w", err)
	}
	if err = dev.PreKeys.MarkPreKeysAsUploaded(ctx, preKeys[len(preKeys)-1].KeyID); err != nil {
		return fmt.Errorf("wamock: mark prekeys uploaded: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.devices[num]
	d.hasKeys = true
	d.registrationID = dev.RegistrationID
	d.identityPub = *dev.IdentityKey.Pub
	d.signedID = dev.SignedPreKey.KeyID
	d.signedPub = *dev.SignedPreKey.Pub
	d.signedSig = *dev.SignedPreKey.Signature
	for _, pk := range preKeys {
		d.preKeys = append(d.preKeys, uploadedPreKey{id: pk.KeyID, pub: *pk.Pub})
	}
	return nil
}

// makeAccount fills the signed device identity that a paired device keeps.
// whatsmeow only re-sends it (in <device-identity>), so signatures need not
// verify; they are random bytes of the right sizes.
func (s *Server) makeAccount(num uint16) (*waAdv.ADVSignedDeviceIdentity, error) {
	details, err := proto.Marshal(&waAdv.ADVDeviceIdentity{
		RawID:     proto.Uint32(uint32(num) * 7919),
		Timestamp: proto.Uint64(uint64(time.Now().Unix())),
		KeyIndex:  proto.Uint32(uint32(num)),
	})
	if err != nil {
		return nil, fmt.Errorf("wamock: marshal device identity: %w", err)
	}
	sigKey := s.phone.peer.identityPub()
	accountSig := make([]byte, 64)
	deviceSig := make([]byte, 64)
	_, _ = rand.Read(accountSig)
	_, _ = rand.Read(deviceSig)
	return &waAdv.ADVSignedDeviceIdentity{
		Details:             details,
		AccountSignatureKey: sigKey[:],
		AccountSignature:    accountSig,
		DeviceSignature:     deviceSig,
	}, nil
}

// NewClient returns a whatsmeow client for device, routed to this server but
// not connected yet, so that event handlers can be added first. log may be
// nil: the client then logs into the server's logger at info level.
func (s *Server) NewClient(device *store.Device, log waLog.Logger) *whatsmeow.Client {
	if log == nil {
		ctx := s.log.With().Str("component", "client")
		if device.ID != nil {
			ctx = ctx.Uint16("device", device.ID.Device)
		} else {
			// An unpaired store gets its device number only when it pairs,
			// after this logger is made.
			ctx = ctx.Bool("new_device", true)
		}
		log = waLog.Zerolog(ctx.Logger().Level(maxLevel(s.log.GetLevel(), infoLevel)))
	}
	cli := whatsmeow.NewClient(device, log)
	httpClient := s.HTTPClient()
	cli.SetWebsocketHTTPClient(httpClient)
	cli.SetPreLoginHTTPClient(httpClient)
	cli.SetMediaHTTPClient(httpClient)
	return cli
}

// ConnectAndWait connects cli and waits for events.Connected, failing t
// after ConnectTimeout.
func (s *Server) ConnectAndWait(t testing.TB, cli *whatsmeow.Client) {
	t.Helper()
	if err := s.connectAndWait(cli); err != nil {
		t.Fatalf("wamock: %v", err)
	}
}

func (s *Server) connectAndWait(cli *whatsmeow.Client) error {
	connected := make(chan struct{}, 1)
	id := cli.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.Connected); ok {
			select {
			case connected <- struct{}{}:
			default:
			}
		}
	})
	defer cli.RemoveEventHandler(id)
	if err := cli.Connect(); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	select {
	case <-connected:
		return nil
	case <-time.After(ConnectTimeout):
		return fmt.Errorf("client did not reach events.Connected within %s; server errors: %v", ConnectTimeout, s.Errors())
	}
}

// QuickClient makes a SQLite container in t.TempDir, a device, a client, and
// connects it. It disconnects the client in t.Cleanup.
func (s *Server) QuickClient(t testing.TB) *whatsmeow.Client {
	t.Helper()
	cli, _ := s.QuickClientContainer(t)
	return cli
}

// QuickClientContainer is QuickClient that also returns the container.
func (s *Server) QuickClientContainer(t testing.TB) (*whatsmeow.Client, *sqlstore.Container) {
	t.Helper()
	cli, container := s.QuickUnconnectedClient(t)
	s.ConnectAndWait(t, cli)
	return cli, container
}

// QuickUnconnectedClient is QuickClientContainer without connecting, for
// tests that set client options or handlers first. ConnectAndWait connects.
func (s *Server) QuickUnconnectedClient(t testing.TB) (*whatsmeow.Client, *sqlstore.Container) {
	t.Helper()
	ctx := context.Background()
	container := s.tempContainer(t)
	device, err := s.NewDevice(ctx, container)
	if err != nil {
		_ = container.Close()
		t.Fatalf("wamock: %v", err)
	}
	cli := s.NewClient(device, nil)
	t.Cleanup(func() {
		s.WaitIdle(device.ID.Device, 2*time.Second)
		cli.Disconnect()
		_ = container.Close()
	})
	return cli, container
}

// tempContainer opens a SQLite whatsmeow container in t.TempDir.
func (s *Server) tempContainer(t testing.TB) *sqlstore.Container {
	t.Helper()
	dsn := "file:" + filepath.Join(t.TempDir(), "whatsmeow.db") + "?_foreign_keys=on"
	container, err := sqlstore.New(context.Background(), "sqlite3", dsn,
		waLog.Zerolog(s.log.With().Str("component", "sqlstore").Logger().Level(infoLevel)))
	if err != nil {
		t.Fatalf("wamock: open sqlite container: %v", err)
	}
	return container
}

// QuickUnpairedClient makes a SQLite container in t.TempDir with a new,
// unpaired device (no ID) and a client for it, not connected. Connecting it
// starts a pairing: see Phone.ScanQR, Phone.EnterCode and ConnectAndPair.
// t.Cleanup waits for the client to go idle, then disconnects it.
func (s *Server) QuickUnpairedClient(t testing.TB) (*whatsmeow.Client, *sqlstore.Container) {
	t.Helper()
	container := s.tempContainer(t)
	cli := s.NewClient(container.NewDevice(), nil)
	t.Cleanup(func() {
		// whatsmeow sets the ID on its pairing goroutine; a test that paired
		// has waited for the outcome (events.PairSuccess or the QR channel)
		// before it ends, so reading it here does not race.
		device := PairingDevice
		if id := cli.Store.ID; id != nil {
			device = id.Device
		}
		s.WaitIdle(device, 2*time.Second)
		cli.Disconnect()
		_ = container.Close()
	})
	return cli, container
}

// ConnectAndPair connects an unpaired client, scans its first QR code with
// our phone and waits until it has logged in as the new device (after
// events.PairSuccess, whatsmeow reconnects and reaches events.Connected).
// It fails t after ConnectTimeout plus the pairing itself.
func (s *Server) ConnectAndPair(t testing.TB, cli *whatsmeow.Client) types.JID {
	t.Helper()
	jid, err := s.connectAndPair(cli)
	if err != nil {
		t.Fatalf("wamock: %v", err)
	}
	return jid
}

func (s *Server) connectAndPair(cli *whatsmeow.Client) (types.JID, error) {
	ctx, cancel := context.WithTimeout(s.ctx, ConnectTimeout)
	defer cancel()
	qrChan, err := cli.GetQRChannel(ctx)
	if err != nil {
		return types.EmptyJID, fmt.Errorf("get QR channel: %w", err)
	}
	connected := make(chan struct{}, 1)
	id := cli.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.Connected); ok {
			select {
			case connected <- struct{}{}:
			default:
			}
		}
	})
	defer cli.RemoveEventHandler(id)
	if err = cli.Connect(); err != nil {
		return types.EmptyJID, fmt.Errorf("connect: %w", err)
	}
	var item whatsmeow.QRChannelItem
	select {
	case item = <-qrChan:
	case <-ctx.Done():
		return types.EmptyJID, fmt.Errorf("no QR code within %s; server errors: %v", ConnectTimeout, s.Errors())
	}
	if item.Event != whatsmeow.QRChannelEventCode {
		return types.EmptyJID, fmt.Errorf("QR channel said %q instead of giving a code", item.Event)
	}
	jid, err := s.phone.ScanQR(ctx, item.Code)
	if err != nil {
		return types.EmptyJID, err
	}
	select {
	case item = <-qrChan:
	case <-ctx.Done():
		return types.EmptyJID, fmt.Errorf("no pairing outcome within %s", ConnectTimeout)
	}
	if item != whatsmeow.QRChannelSuccess {
		return types.EmptyJID, fmt.Errorf("QR channel ended with %q (%v) instead of success", item.Event, item.Error)
	}
	select {
	case <-connected:
		return jid, nil
	case <-ctx.Done():
		return types.EmptyJID, fmt.Errorf("paired client did not reach events.Connected within %s; server errors: %v", ConnectTimeout, s.Errors())
	}
}

// OwnDeviceJIDs lists our devices that uploaded keys (the ones a contact's
// message reaches), as PN device JIDs.
func (s *Server) OwnDeviceJIDs() []types.JID {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []types.JID
	for _, d := range s.sortedDevicesLocked() {
		if d.hasKeys {
			jid := s.ownPN
			jid.Device = d.num
			out = append(out, jid)
		}
	}
	return out
}

// sortedDevicesLocked lists our devices by number; the caller holds s.mu.
func (s *Server) sortedDevicesLocked() []*ownDevice {
	out := make([]*ownDevice, 0, len(s.devices))
	for _, d := range s.devices {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].num < out[j].num })
	return out
}

// deliver sends a stanza to one of our devices, or queues it until the
// device logs in again.
func (s *Server) deliver(ctx context.Context, num uint16, node waBinary.Node) error {
	// deliverMu orders this against flushPending, so a stanza is never queued
	// just after the queue was flushed.
	s.deliverMu.Lock()
	defer s.deliverMu.Unlock()
	s.noteDelivery(strAttr(&node, "id"), num, &node)
	for _, c := range s.loggedInConns() {
		if c.deviceNum() == num && c.isActive() {
			err := c.send(ctx, node)
			if err == nil {
				return nil
			}
			// Most likely a connection that is going away while its
			// replacement logs in: queue instead.
			s.log.Debug().Err(err).Uint16("device", num).Msg("Delivery failed")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[num]
	if !ok {
		return fmt.Errorf("wamock: unknown device %d", num)
	}
	s.log.Debug().Uint16("device", num).Str("tag", node.Tag).Msg("Device offline, queueing stanza")
	d.pending = append(d.pending, node)
	return nil
}

// flushPending sends what was queued for the connection's device.
func (s *Server) flushPending(ctx context.Context, c *conn) {
	s.deliverMu.Lock()
	defer s.deliverMu.Unlock()
	if !c.markActive() {
		return
	}
	s.mu.Lock()
	d := s.devices[c.deviceNum()]
	var pending []waBinary.Node
	if d != nil {
		pending, d.pending = d.pending, nil
	}
	s.mu.Unlock()
	for _, node := range pending {
		if err := c.send(ctx, node); err != nil {
			s.log.Warn().Err(err).Msg("Failed to flush queued stanza")
		}
	}
}
