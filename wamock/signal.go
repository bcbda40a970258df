package wamock

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"go.mau.fi/libsignal/ecc"
	groupRecord "go.mau.fi/libsignal/groups/state/record"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/serialize"
	"go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/state/record"
	"go.mau.fi/libsignal/state/store"
	"go.mau.fi/libsignal/util/keyhelper"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// signalSerializer is the protobuf serializer whatsmeow also uses, so the
// wire formats match.
var signalSerializer = serialize.NewProtoBufSerializer()

// memStore is an in-memory Signal protocol store for the server-side peers
// (contacts' devices and our phone).
type memStore struct {
	mu         sync.Mutex
	identity   *identity.KeyPair
	regID      uint32
	identities map[string][32]byte
	preKeys    map[uint32]*record.PreKey
	signed     map[uint32]*record.SignedPreKey
	sessions   map[string][]byte
	senderKeys map[string]*groupRecord.SenderKey
}

var _ store.SignalProtocol = (*memStore)(nil)

func newMemStore() (*memStore, error) {
	idKey, err := keyhelper.GenerateIdentityKeyPair()
	if err != nil {
		return nil, fmt.Errorf("generate identity key: %w", err)
	}
	return &memStore{
		identity:   idKey,
		regID:      keyhelper.GenerateRegistrationID() & 0x3fff,
		identities: make(map[string][32]byte),
		preKeys:    make(map[uint32]*record.PreKey),
		signed:     make(map[uint32]*record.SignedPreKey),
		sessions:   make(map[string][]byte),
		senderKeys: make(map[string]*groupRecord.SenderKey),
	}, nil
}

func (m *memStore) GetIdentityKeyPair() *identity.KeyPair { return m.identity }
func (m *memStore) GetLocalRegistrationID() uint32        { return m.regID }

func (m *memStore) SaveIdentity(_ context.Context, address *protocol.SignalAddress, key *identity.Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.identities[address.String()] = key.PublicKey().PublicKey()
	return nil
}

// IsTrustedIdentity trusts every key: the fake peers should follow our
// client through reinstalls the way whatsmeow's AutoTrustIdentity does,
// rather than fail a test.
func (m *memStore) IsTrustedIdentity(context.Context, *protocol.SignalAddress, *identity.Key) (bool, error) {
	return true, nil
}

func (m *memStore) LoadPreKey(_ context.Context, id uint32) (*record.PreKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.preKeys[id], nil
}

func (m *memStore) StorePreKey(_ context.Context, id uint32, rec *record.PreKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.preKeys[id] = rec
	return nil
}

func (m *memStore) ContainsPreKey(_ context.Context, id uint32) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.preKeys[id]
	return ok, nil
}

func (m *memStore) RemovePreKey(_ context.Context, id uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.preKeys, id)
	return nil
}

// Sessions are kept serialized so that a failed decryption, which mutates
// the loaded record, never leaks into the stored state.
func (m *memStore) LoadSession(_ context.Context, address *protocol.SignalAddress) (*record.Session, error) {
	m.mu.Lock()
	raw, ok := m.sessions[address.String()]
	m.mu.Unlock()
	if !ok {
		return record.NewSession(signalSerializer.Session, signalSerializer.State), nil
	}
	sess, err := record.NewSessionFromBytes(raw, signalSerializer.Session, signalSerializer.State)
	if err != nil {
		return nil, fmt.Errorf("deserialize session with %s: %w", address, err)
	}
	return sess, nil
}

func (m *memStore) GetSubDeviceSessions(_ context.Context, name string) ([]uint32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []uint32
	for id := uint32(0); id < 256; id++ {
		if _, ok := m.sessions[protocol.NewSignalAddress(name, id).String()]; ok {
			out = append(out, id)
		}
	}
	return out, nil
}

func (m *memStore) StoreSession(_ context.Context, address *protocol.SignalAddress, rec *record.Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sessions[address.String()] = rec.Serialize()
	return nil
}

func (m *memStore) ContainsSession(_ context.Context, address *protocol.SignalAddress) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.sessions[address.String()]
	return ok, nil
}

func (m *memStore) DeleteSession(_ context.Context, address *protocol.SignalAddress) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, address.String())
	return nil
}

func (m *memStore) DeleteAllSessions(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sessions = make(map[string][]byte)
	return nil
}

func (m *memStore) LoadSignedPreKey(_ context.Context, id uint32) (*record.SignedPreKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.signed[id], nil
}

func (m *memStore) LoadSignedPreKeys(context.Context) ([]*record.SignedPreKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*record.SignedPreKey, 0, len(m.signed))
	for _, rec := range m.signed {
		out = append(out, rec)
	}
	return out, nil
}

func (m *memStore) StoreSignedPreKey(_ context.Context, id uint32, rec *record.SignedPreKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.signed[id] = rec
	return nil
}

func (m *memStore) ContainsSignedPreKey(_ context.Context, id uint32) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.signed[id]
	return ok, nil
}

func (m *memStore) RemoveSignedPreKey(_ context.Context, id uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.signed, id)
	return nil
}

func (m *memStore) StoreSenderKey(_ context.Context, name *protocol.SenderKeyName, rec *groupRecord.SenderKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.senderKeys[name.GroupID()+"\x00"+name.Sender().String()] = rec
	return nil
}

func (m *memStore) LoadSenderKey(_ context.Context, name *protocol.SenderKeyName) (*groupRecord.SenderKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rec, ok := m.senderKeys[name.GroupID()+"\x00"+name.Sender().String()]; ok {
		return rec, nil
	}
	return groupRecord.NewSenderKey(signalSerializer.SenderKeyRecord, signalSerializer.SenderKeyState), nil
}

// peerDevice is one Signal device played by the server: a contact's device
// or our phone.
type peerDevice struct {
	// mu serialises whole Signal operations (load, ratchet, store).
	mu        sync.Mutex
	store     *memStore
	signedID  uint32
	nextPreID uint32
}

func newPeerDevice() (*peerDevice, error) {
	p := &peerDevice{}
	if err := p.reset(); err != nil {
		return nil, err
	}
	return p, nil
}

// reset gives the device a fresh identity, as a reinstall does: new
// identity key, registration ID and signed prekey, no sessions.
func (p *peerDevice) reset() error {
	st, err := newMemStore()
	if err != nil {
		return err
	}
	p.signedID++
	signed, err := keyhelper.GenerateSignedPreKey(st.identity, p.signedID, signalSerializer.SignedPreKeyRecord)
	if err != nil {
		return fmt.Errorf("generate signed prekey: %w", err)
	}
	st.signed[p.signedID] = signed
	p.store = st
	return nil
}

func (p *peerDevice) reinstall() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reset()
}

func (p *peerDevice) identityPub() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	pub := p.store.identity.PublicKey().PublicKey().PublicKey()
	return pub[:]
}

// bundleNode renders a prekey bundle for whatsmeow's prekey fetch.
func (p *peerDevice) bundleNode(jid types.JID) (*waBinary.Node, error) {
	b, err := p.bundleKeys()
	if err != nil {
		return nil, err
	}
	return b.node(jid), nil
}

// bundle returns a prekey bundle as libsignal wants it.
func (p *peerDevice) bundle(deviceID uint32) (*prekey.Bundle, error) {
	b, err := p.bundleKeys()
	if err != nil {
		return nil, err
	}
	return b.bundle(deviceID), nil
}

// bundleKeys hands out the device's public keys with a freshly generated
// one-time prekey, so they never run out.
func (p *peerDevice) bundleKeys() (bundleKeys, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	kp, err := ecc.GenerateKeyPair()
	if err != nil {
		return bundleKeys{}, fmt.Errorf("generate prekey: %w", err)
	}
	p.nextPreID = (p.nextPreID + 1) & 0xffffff
	if p.nextPreID == 0 {
		p.nextPreID = 1
	}
	p.store.preKeys[p.nextPreID] = record.NewPreKey(p.nextPreID, kp, signalSerializer.PreKeyRecord)
	signed := p.store.signed[p.signedID]
	prePub := kp.PublicKey().PublicKey()
	b := bundleKeys{
		registrationID: p.store.regID,
		identityPub:    p.store.identity.PublicKey().PublicKey().PublicKey(),
		preKeyID:       p.nextPreID,
		preKeyPub:      &prePub,
		signedID:       p.signedID,
		signedPub:      signed.KeyPair().PublicKey().PublicKey(),
		signedSig:      signed.Signature(),
	}
	return b, nil
}

// encrypt Signal-encrypts plaintext (which gets WhatsApp's padding) for the
// remote address. With no session yet, getBundle supplies the remote
// device's prekey bundle and the result is a prekey message ("pkmsg").
func (p *peerDevice) encrypt(ctx context.Context, addr *protocol.SignalAddress, getBundle func() (*prekey.Bundle, error), plaintext []byte) (encType string, ciphertext []byte, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	builder := session.NewBuilderFromSignal(p.store, addr, signalSerializer)
	has, err := p.store.ContainsSession(ctx, addr)
	if err != nil {
		return "", nil, err
	}
	if !has {
		bundle, err := getBundle()
		if err != nil {
			return "", nil, fmt.Errorf("get prekey bundle for %s: %w", addr, err)
		}
		if err = builder.ProcessBundle(ctx, bundle); err != nil {
			return "", nil, fmt.Errorf("process prekey bundle of %s: %w", addr, err)
		}
	}
	msg, err := session.NewCipher(builder, addr).Encrypt(ctx, padPlaintext(plaintext))
	if err != nil {
		return "", nil, fmt.Errorf("encrypt for %s: %w", addr, err)
	}
	encType = "msg"
	if msg.Type() == protocol.PREKEY_TYPE {
		encType = "pkmsg"
	}
	return encType, msg.Serialize(), nil
}

// decrypt opens a "pkmsg" or "msg" from addr and strips the padding.
func (p *peerDevice) decrypt(ctx context.Context, addr *protocol.SignalAddress, encType string, ciphertext []byte) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cipher := session.NewCipher(session.NewBuilderFromSignal(p.store, addr, signalSerializer), addr)
	var plaintext []byte
	switch encType {
	case "pkmsg":
		msg, err := protocol.NewPreKeySignalMessageFromBytes(ciphertext, signalSerializer.PreKeySignalMessage, signalSerializer.SignalMessage)
		if err != nil {
			return nil, fmt.Errorf("parse prekey message: %w", err)
		}
		if plaintext, err = cipher.DecryptMessage(ctx, msg); err != nil {
			return nil, fmt.Errorf("decrypt prekey message from %s: %w", addr, err)
		}
	case "msg":
		msg, err := protocol.NewSignalMessageFromBytes(ciphertext, signalSerializer.SignalMessage)
		if err != nil {
			return nil, fmt.Errorf("parse message: %w", err)
		}
		if plaintext, err = cipher.Decrypt(ctx, msg); err != nil {
			return nil, fmt.Errorf("decrypt message from %s: %w", addr, err)
		}
	default:
		return nil, fmt.Errorf("unsupported enc type %q", encType)
	}
	return unpadPlaintext(plaintext)
}

// padPlaintext appends WhatsApp's random padding: n bytes of value n, with
// n from 1 to 15.
func padPlaintext(plaintext []byte) []byte {
	var b [1]byte
	_, _ = rand.Read(b[:])
	n := int(b[0] & 0x0f)
	if n == 0 {
		n = 15
	}
	out := make([]byte, len(plaintext), len(plaintext)+n)
	copy(out, plaintext)
	for i := 0; i < n; i++ {
		out = append(out, byte(n))
	}
	return out
}

func unpadPlaintext(plaintext []byte) ([]byte, error) {
	if len(plaintext) == 0 {
		return nil, errors.New("empty plaintext")
	}
	n := int(plaintext[len(plaintext)-1])
	if n == 0 || n > len(plaintext) {
		return nil, fmt.Errorf("bad padding length %d", n)
	}
	for _, b := range plaintext[len(plaintext)-n:] {
		if int(b) != n {
			return nil, errors.New("bad padding bytes")
		}
	}
	return plaintext[:len(plaintext)-n], nil
}
