package wamock

import (
	"bytes"
	"compress/zlib"
	"context"
	"fmt"
	"sync"
	"time"

	"go.mau.fi/libsignal/session"
	"go.mau.fi/whatsmeow/appstate"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waServerSync"
	"go.mau.fi/whatsmeow/proto/waSyncAction"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Field numbers this whatsmeow's protobufs lack.
const (
	// SyncActionValueNctSaltField is SyncActionValue.nctSaltSyncAction.
	SyncActionValueNctSaltField protowire.Number = 80
	// NctSaltSyncActionSaltField is NctSaltSyncAction.salt.
	NctSaltSyncActionSaltField protowire.Number = 1
	// HistorySyncNctSaltField is HistorySync.nctSalt.
	HistorySyncNctSaltField protowire.Number = 19
	// NctSaltIndex is the app state index of the salt mutation.
	NctSaltIndex = "nct_salt_sync"
)

// Phone is our own primary device (device 0 of our account), which sends
// what only the primary sends: app state keys, app state patches and
// history syncs. It has a real Signal identity.
type Phone struct {
	s    *Server
	peer *peerDevice

	mu       sync.Mutex
	received []*waE2E.Message
}

func newPhone(s *Server) (*Phone, error) {
	peer, err := newPeerDevice()
	if err != nil {
		return nil, err
	}
	return &Phone{s: s, peer: peer}, nil
}

// startSession gives a new device a Signal session with the phone, as
// pairing leaves it: whatsmeow sends peer messages (like app state key
// requests) only over an existing session.
func (p *Phone) startSession(ctx context.Context, dev *store.Device) error {
	bundle, err := p.peer.bundle(uint32(0))
	if err != nil {
		return fmt.Errorf("wamock: phone prekey bundle: %w", err)
	}
	addr := p.s.ownLID.SignalAddress()
	if err = session.NewBuilderFromSignal(dev, addr, signalSerializer).ProcessBundle(ctx, bundle); err != nil {
		return fmt.Errorf("wamock: start session with the phone: %w", err)
	}
	return nil
}

// Phone returns our primary device.
func (s *Server) Phone() *Phone { return s.phone }

// JID is the phone's device JID (our PN, device 0).
func (p *Phone) JID() types.JID { return p.s.ownPN }

// Messages returns what the phone decrypted from our client: device-sent
// copies of our 1:1 messages and peer messages.
func (p *Phone) Messages() []*waE2E.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*waE2E.Message(nil), p.received...)
}

// receive decrypts the part of a client message addressed to the phone. A
// request for app state keys is answered with the keys, as a real phone
// does.
func (p *Phone) receive(ctx context.Context, msg *waBinary.Node, fromDevice uint16) {
	for _, target := range participantEncs(msg) {
		if !p.s.isOwnUser(target.jid) || target.jid.Device != 0 {
			continue
		}
		plaintext, err := p.peer.decrypt(ctx, p.s.ownAddr(fromDevice), target.encType, target.ciphertext)
		if err != nil {
			p.s.recordError(fmt.Errorf("phone could not decrypt %s from device %d: %w", strAttr(msg, "id"), fromDevice, err))
			return
		}
		var parsed waE2E.Message
		if err = proto.Unmarshal(plaintext, &parsed); err != nil {
			p.s.recordError(fmt.Errorf("phone could not parse %s: %w", strAttr(msg, "id"), err))
			return
		}
		p.mu.Lock()
		p.received = append(p.received, &parsed)
		p.mu.Unlock()
		if parsed.GetProtocolMessage().GetType() == waE2E.ProtocolMessage_APP_STATE_SYNC_KEY_REQUEST {
			p.s.goBackground(func(ctx context.Context) {
				if err := p.ShareAppStateKeys(ctx); err != nil {
					p.s.log.Warn().Err(err).Msg("Phone failed to answer app state key request")
				}
			})
		}
		return
	}
}

// goBackground runs fn on a goroutine that Close waits for.
func (s *Server) goBackground(fn func(ctx context.Context)) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		fn(s.ctx)
	}()
}

// SendProtocolMessage encrypts msg from the phone to each of our devices as
// a peer message and delivers it (queued for offline devices).
func (p *Phone) SendProtocolMessage(ctx context.Context, msg *waE2E.Message) (types.MessageID, error) {
	plaintext, err := proto.Marshal(msg)
	if err != nil {
		return "", fmt.Errorf("wamock: marshal phone message: %w", err)
	}
	targets := p.s.keyedDevices()
	if len(targets) == 0 {
		return "", ErrNoOwnDevices
	}
	id := newMessageID()
	for _, num := range targets {
		encType, ciphertext, err := p.peer.encrypt(ctx, p.s.ownAddr(num), p.s.ownBundleFunc(num), plaintext)
		if err != nil {
			return "", fmt.Errorf("wamock: phone: %w", err)
		}
		node := waBinary.Node{Tag: "message", Attrs: waBinary.Attrs{
			"id":       id,
			"from":     p.s.ownPN,
			"t":        time.Now().Unix(),
			"type":     "text",
			"category": "peer",
		}, Content: []waBinary.Node{{
			Tag:     "enc",
			Attrs:   waBinary.Attrs{"v": "2", "type": encType},
			Content: ciphertext,
		}}}
		if err = p.s.deliver(ctx, num, node); err != nil {
			return "", err
		}
	}
	return id, nil
}

// AppStateKeyID is the ID of the phone's app state sync key.
func (p *Phone) AppStateKeyID() []byte {
	return append([]byte(nil), p.s.appState.keyID...)
}

// ShareAppStateKeys sends the phone's app state sync key to our devices
// (a peer protocol message with an AppStateSyncKeyShare). whatsmeow stores
// it and then syncs every collection it has not synced yet.
func (p *Phone) ShareAppStateKeys(ctx context.Context) error {
	as := p.s.appState
	_, err := p.SendProtocolMessage(ctx, &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Type: waE2E.ProtocolMessage_APP_STATE_SYNC_KEY_SHARE.Enum(),
		AppStateSyncKeyShare: &waE2E.AppStateSyncKeyShare{Keys: []*waE2E.AppStateSyncKey{{
			KeyID: &waE2E.AppStateSyncKeyId{KeyID: as.keyID},
			KeyData: &waE2E.AppStateSyncKeyData{
				KeyData: as.keyData,
				Fingerprint: &waE2E.AppStateSyncKeyFingerprint{
					RawID:         proto.Uint32(1),
					CurrentIndex:  proto.Uint32(0),
					DeviceIndexes: []uint32{0},
				},
				Timestamp: proto.Int64(as.keyTime),
			},
		}}},
	}})
	if err != nil {
		return fmt.Errorf("share app state keys: %w", err)
	}
	return nil
}

// SendAppStatePatch appends a patch with the mutations to the collection
// and sends a server_sync notification, on which whatsmeow fetches it
// (through <iq xmlns="w:sync:app:state">).
func (p *Phone) SendAppStatePatch(ctx context.Context, name appstate.WAPatchName, muts ...AppStateMutation) error {
	version, err := p.s.appState.apply(name, muts)
	if err != nil {
		return fmt.Errorf("wamock: encode %s patch: %w", name, err)
	}
	if err = p.s.deliverAll(ctx, serverSyncNotification(name, version)); err != nil {
		return fmt.Errorf("wamock: notify %s v%d: %w", name, version, err)
	}
	return nil
}

// AppendAppStatePatch appends a patch like SendAppStatePatch but sends no
// notification, like a change made while no client was listening; clients
// see it on their next sync of the collection.
func (p *Phone) AppendAppStatePatch(name appstate.WAPatchName, muts ...AppStateMutation) error {
	if _, err := p.s.appState.apply(name, muts); err != nil {
		return fmt.Errorf("wamock: encode %s patch: %w", name, err)
	}
	return nil
}

// NctSaltValue builds the SyncActionValue of an nct_salt_sync SET: field 80
// (NctSaltSyncAction) with the salt in its field 1, as unknown fields since
// this whatsmeow's protobufs lack them.
func NctSaltValue(salt []byte) *waSyncAction.SyncActionValue {
	var inner []byte
	inner = protowire.AppendTag(inner, NctSaltSyncActionSaltField, protowire.BytesType)
	inner = protowire.AppendBytes(inner, salt)
	var raw []byte
	raw = protowire.AppendTag(raw, SyncActionValueNctSaltField, protowire.BytesType)
	raw = protowire.AppendBytes(raw, inner)
	value := &waSyncAction.SyncActionValue{Timestamp: proto.Int64(time.Now().UnixMilli())}
	value.ProtoReflect().SetUnknown(raw)
	return value
}

// NctSaltFromValue reads the salt back from a SyncActionValue; ok is false
// when field 80.1 is absent. It reads the marshaled message, so that the
// field is found whether this whatsmeow's protobufs know it or not.
func NctSaltFromValue(value *waSyncAction.SyncActionValue) (salt []byte, ok bool) {
	inner, ok := findBytesField(wireForm(value), SyncActionValueNctSaltField)
	if !ok {
		return nil, false
	}
	return findBytesField(inner, NctSaltSyncActionSaltField)
}

// HistorySyncNctSalt reads HistorySync field 19, known or unknown.
func HistorySyncNctSalt(hs *waHistorySync.HistorySync) (salt []byte, ok bool) {
	return findBytesField(wireForm(hs), HistorySyncNctSaltField)
}

// wireForm is a message as marshaled: known and unknown fields alike.
func wireForm(msg proto.Message) []byte {
	raw, _ := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	return raw
}

// findBytesField returns the last occurrence of a bytes field in raw
// protobuf data (the last one wins, as in proto merging).
func findBytesField(raw []byte, field protowire.Number) ([]byte, bool) {
	var found []byte
	ok := false
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			return nil, false
		}
		raw = raw[n:]
		if num == field && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(raw)
			if m < 0 {
				return nil, false
			}
			found, ok = append([]byte(nil), v...), true
			raw = raw[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, raw)
		if m < 0 {
			return nil, false
		}
		raw = raw[m:]
	}
	return found, ok
}

// SetNCTSalt writes the NCT salt: a regular_high patch with an
// ["nct_salt_sync"] SET whose value carries the salt in field 80.1.
func (p *Phone) SetNCTSalt(ctx context.Context, salt []byte) error {
	return p.SendAppStatePatch(ctx, appstate.WAPatchRegularHigh, AppStateMutation{
		Operation: waServerSync.SyncdMutation_SET,
		Index:     []string{NctSaltIndex},
		Value:     NctSaltValue(salt),
		Version:   1,
	})
}

// RemoveNCTSalt clears the salt with a REMOVE of ["nct_salt_sync"].
// whatsmeow emits no event for REMOVE mutations.
func (p *Phone) RemoveNCTSalt(ctx context.Context) error {
	return p.SendAppStatePatch(ctx, appstate.WAPatchRegularHigh, AppStateMutation{
		Operation: waServerSync.SyncdMutation_REMOVE,
		Index:     []string{NctSaltIndex},
		Value:     &waSyncAction.SyncActionValue{},
		Version:   1,
	})
}

// HistorySyncNctSaltRaw encodes HistorySync field 19 (nctSalt) as raw
// protobuf, for SendHistorySync's extraRaw.
func HistorySyncNctSaltRaw(salt []byte) []byte {
	raw := protowire.AppendTag(nil, HistorySyncNctSaltField, protowire.BytesType)
	return protowire.AppendBytes(raw, salt)
}

// SendHistorySync serves hs (marshaled, followed by extraRaw, which lets
// callers add fields this whatsmeow's protobufs lack) zlib-compressed and
// encrypted from the media host, and sends our devices the history sync
// notification pointing at it. whatsmeow downloads it and emits
// events.HistorySync.
func (p *Phone) SendHistorySync(ctx context.Context, hs *waHistorySync.HistorySync, extraRaw []byte) error {
	raw, err := proto.Marshal(hs)
	if err != nil {
		return fmt.Errorf("wamock: marshal history sync: %w", err)
	}
	raw = append(raw, extraRaw...)
	var compressed bytes.Buffer
	zw := zlib.NewWriter(&compressed)
	if _, err = zw.Write(raw); err != nil {
		return fmt.Errorf("wamock: compress history sync: %w", err)
	}
	if err = zw.Close(); err != nil {
		return fmt.Errorf("wamock: compress history sync: %w", err)
	}
	media, err := p.s.media.upload(compressed.Bytes(), mediaTypeHistory)
	if err != nil {
		return fmt.Errorf("wamock: upload history sync: %w", err)
	}
	_, err = p.SendProtocolMessage(ctx, &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Type: waE2E.ProtocolMessage_HISTORY_SYNC_NOTIFICATION.Enum(),
		HistorySyncNotification: &waE2E.HistorySyncNotification{
			FileSHA256:    media.FileSHA256,
			FileLength:    proto.Uint64(media.FileLength),
			MediaKey:      media.MediaKey,
			FileEncSHA256: media.FileEncSHA256,
			DirectPath:    proto.String(media.DirectPath),
			SyncType:      waE2E.HistorySyncType(hs.GetSyncType()).Enum(),
			ChunkOrder:    proto.Uint32(hs.GetChunkOrder()),
			Progress:      proto.Uint32(hs.GetProgress()),
		},
	}})
	if err != nil {
		return fmt.Errorf("wamock: send history sync notification: %w", err)
	}
	return nil
}
