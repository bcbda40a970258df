package wamock

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// PairingDevice is the device number under which the observer files what
// unpaired connections send and receive: ReceivedFrom reports it for their
// stanzas, and WaitIdle(PairingDevice, …) waits for them to go quiet.
const PairingDevice uint16 = 0

// pairRefCount is how many refs <pair-device> carries; whatsmeow shows one
// QR code per ref (60 s for the first, 20 s for each later one).
const pairRefCount = 6

// linkCodeIterations is the PBKDF2 work factor whatsmeow uses to wrap
// ephemeral keys with a pairing code (pair-code.go: 2<<16).
const linkCodeIterations = 2 << 16

// PairingPlatform is the primary device's platform that <pair-success>
// names; whatsmeow stores it in Store.Platform.
const PairingPlatform = "android"

// pairing is the server's state for a connection that registers a new
// device. The conn's stateMu guards it.
type pairing struct {
	// noisePub and identityPub are what the client's QR codes must show.
	noisePub    [32]byte
	identityPub [32]byte
	refs        []string

	// Phone-code path: set by the client's companion_hello ...
	linkRef          string
	wrappedCompanion []byte
	// ... and by the phone's EnterCode.
	linkShared []byte // X25519 of the two ephemeral keys, as the phone sees it
	linkResult chan linkFinish

	// Set when our phone sent <pair-success>.
	successID string
	device    uint16
	// result receives the client's answer to <pair-success>.
	result chan error
}

// linkFinish is what the client's companion_finish yields: the adv secret,
// or why the phone could not derive it.
type linkFinish struct {
	advSecret []byte
	err       error
}

// startPairing keeps a registering client connected and asks it to show
// QR codes, as the real server does: <iq type="set"><pair-device><ref>….
func (c *conn) startPairing(ctx context.Context, payload *waWa6.ClientPayload) error {
	reg := payload.GetDevicePairingData()
	if reg == nil {
		return errors.New("client payload has neither a username nor device pairing data")
	}
	if len(reg.GetEIdent()) != 32 {
		return fmt.Errorf("device pairing data has a %d-byte identity key", len(reg.GetEIdent()))
	}
	p := &pairing{identityPub: [32]byte(reg.GetEIdent())}
	refs := make([]waBinary.Node, pairRefCount)
	for i := range refs {
		ref := newPairingRef()
		p.refs = append(p.refs, ref)
		refs[i] = waBinary.Node{Tag: "ref", Content: []byte(ref)}
	}
	c.stateMu.Lock()
	p.noisePub = c.clientStatic
	c.pair = p
	c.stateMu.Unlock()
	// Whatever an earlier pairing connection left unanswered is moot.
	c.s.obs.resetUnanswered(PairingDevice)
	c.log = c.s.log.With().Str("conn", "pairing").Logger()

	err := c.send(ctx, waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{
		"from":  types.ServerJID,
		"type":  "set",
		"id":    newStanzaID(),
		"xmlns": "md",
	}, Content: []waBinary.Node{{Tag: "pair-device", Content: refs}}})
	if err != nil {
		return fmt.Errorf("send pair-device: %w", err)
	}
	c.log.Debug().Strs("refs", p.refs).Msg("Client registers a new device; sent pair-device")
	return nil
}

// newPairingRef makes a ref like the real ones ("2@" and base64).
func newPairingRef() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "2@" + base64.StdEncoding.EncodeToString(b)
}

func (c *conn) pairingState() *pairing {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return c.pair
}

// pairingConn finds an open connection that is pairing and satisfies
// match, which runs with the conn's stateMu held. The newest match wins.
func (s *Server) pairingConn(match func(p *pairing) bool) *conn {
	s.mu.Lock()
	conns := s.connList()
	s.mu.Unlock()
	var found *conn
	var foundSeq uint64
	for _, c := range conns {
		c.stateMu.Lock()
		ok := c.pair != nil && match(c.pair)
		c.stateMu.Unlock()
		if ok && (found == nil || c.seq > foundSeq) {
			found, foundSeq = c, c.seq
		}
	}
	return found
}

// handlePairingNode answers what an unpaired client sends: acks for
// <pair-device>, the phone-code IQs and its answer to <pair-success>.
func (s *Server) handlePairingNode(ctx context.Context, c *conn, node *waBinary.Node) {
	if node.Tag != "iq" {
		// Acks of the link-code notification are only recorded.
		return
	}
	p := c.pairingState()
	switch typ := strAttr(node, "type"); typ {
	case "result", "error":
		c.stateMu.Lock()
		isSuccessReply := p.successID != "" && strAttr(node, "id") == p.successID
		c.stateMu.Unlock()
		if isSuccessReply {
			s.finishPairing(ctx, c, p, node)
		}
		// Otherwise the ack of <pair-device>, which needs nothing.
		return
	}
	if strAttr(node, "xmlns") == "md" && hasChild(node, "link_code_companion_reg") {
		reg := node.GetChildByTag("link_code_companion_reg")
		switch stage := strAttr(&reg, "stage"); stage {
		case "companion_hello":
			s.reply(ctx, c, s.linkCodeHello(c, p, node, &reg))
		case "companion_finish":
			s.linkCodeFinish(ctx, c, p, node, &reg)
		default:
			s.recordError(fmt.Errorf("pairing client sent link_code_companion_reg stage %q", stage))
			s.reply(ctx, c, ErrorIQ(node, 400, "bad-request"))
		}
		return
	}
	// whatsmeow sends nothing else before it is paired; an empty result
	// keeps whatever it is from hanging.
	s.reply(ctx, c, ResultIQ(node))
}

// linkCodeHello answers PairPhone's companion_hello with a pairing ref and
// keeps the companion's wrapped ephemeral key for EnterCode.
func (s *Server) linkCodeHello(c *conn, p *pairing, iq, reg *waBinary.Node) *waBinary.Node {
	if jid := jidAttr(reg, "jid"); jid.User != s.ownPN.User {
		// The real server knows no such account either.
		s.log.Debug().Stringer("jid", jid).Msg("Pairing code requested for another account")
		return ErrorIQ(iq, 400, "bad-request")
	}
	wrapped := childBytes(reg, "link_code_pairing_wrapped_companion_ephemeral_pub")
	if len(wrapped) != 80 {
		s.recordError(fmt.Errorf("companion_hello: wrapped ephemeral key has %d bytes, want 80", len(wrapped)))
		return ErrorIQ(iq, 400, "bad-request")
	}
	if auth := childBytes(reg, "companion_server_auth_key_pub"); !bytes.Equal(auth, p.noisePub[:]) {
		s.recordError(errors.New("companion_hello: companion_server_auth_key_pub is not the client's noise key"))
		return ErrorIQ(iq, 400, "bad-request")
	}
	ref := newPairingRef()
	c.stateMu.Lock()
	// A second PairPhone replaces the first code, as on the real server.
	p.linkRef = ref
	p.wrappedCompanion = append([]byte(nil), wrapped...)
	p.linkShared = nil
	p.linkResult = nil
	c.stateMu.Unlock()
	return ResultIQ(iq, waBinary.Node{Tag: "link_code_companion_reg", Content: []waBinary.Node{
		{Tag: "link_code_pairing_ref", Content: []byte(ref)},
	}})
}

// linkCodeFinish is our phone's side of companion_finish: it unwraps the
// key bundle with the ephemeral secret that EnterCode agreed on, derives
// the adv secret the same way whatsmeow does, answers the IQ and hands the
// outcome to EnterCode.
func (s *Server) linkCodeFinish(ctx context.Context, c *conn, p *pairing, iq, reg *waBinary.Node) {
	c.stateMu.Lock()
	shared, ref, result := p.linkShared, p.linkRef, p.linkResult
	c.stateMu.Unlock()
	if result == nil {
		s.recordError(errors.New("companion_finish before the phone entered a code"))
		s.reply(ctx, c, ErrorIQ(iq, 400, "bad-request"))
		return
	}
	adv, err := s.phone.unwrapKeyBundle(p.identityPub, shared, ref, reg)
	// Answer before EnterCode returns, so that a test which then ends
	// does not disconnect a client still waiting for this reply.
	if err != nil {
		s.reply(ctx, c, ErrorIQ(iq, 400, "bad-request"))
	} else {
		s.reply(ctx, c, ResultIQ(iq))
	}
	select {
	case result <- linkFinish{advSecret: adv, err: err}:
	default:
	}
}

func (p *Phone) unwrapKeyBundle(companionIdentity [32]byte, shared []byte, ref string, reg *waBinary.Node) ([]byte, error) {
	if got := string(childBytes(reg, "link_code_pairing_ref")); got != ref {
		return nil, fmt.Errorf("companion_finish for ref %q, want %q", got, ref)
	}
	if got := childBytes(reg, "companion_identity_public"); !bytes.Equal(got, companionIdentity[:]) {
		return nil, errors.New("companion_finish names another identity key than the client registered")
	}
	wrapped := childBytes(reg, "link_code_pairing_wrapped_key_bundle")
	if len(wrapped) < 32+12+16 {
		return nil, fmt.Errorf("wrapped key bundle has only %d bytes", len(wrapped))
	}
	salt, nonce, sealed := wrapped[:32], wrapped[32:44], wrapped[44:]
	key, err := hkdf.Key(sha256.New, shared, salt, "link_code_pairing_key_bundle_encryption_key", 32)
	if err != nil {
		return nil, fmt.Errorf("derive key bundle key: %w", err)
	}
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	bundle, err := gcm.Open(nil, nonce, sealed, nil)
	if err != nil {
		// The usual cause: the phone entered another code than the client
		// showed, so the two sides disagree on the ephemeral secret.
		return nil, fmt.Errorf("open key bundle (wrong pairing code?): %w", err)
	}
	if len(bundle) != 96 {
		return nil, fmt.Errorf("key bundle has %d bytes, want 96", len(bundle))
	}
	phonePub := p.peer.identityPub()
	if !bytes.Equal(bundle[:32], companionIdentity[:]) || !bytes.Equal(bundle[32:64], phonePub) {
		return nil, errors.New("key bundle names other identity keys")
	}
	identityShared, err := p.peer.identityDH(companionIdentity)
	if err != nil {
		return nil, err
	}
	input := append(append(append([]byte(nil), shared...), identityShared...), bundle[64:]...)
	adv, err := hkdf.Key(sha256.New, input, nil, "adv_secret", 32)
	if err != nil {
		return nil, fmt.Errorf("derive adv secret: %w", err)
	}
	return adv, nil
}

// linkCodeCTR applies the AES-CTR keystream that pairing codes wrap
// ephemeral keys with (PBKDF2-SHA256 of the code, whatsmeow's parameters).
func linkCodeCTR(code string, salt, iv, data []byte) ([]byte, error) {
	key, err := pbkdf2.Key(sha256.New, code, salt, linkCodeIterations, 32)
	if err != nil {
		return nil, fmt.Errorf("pbkdf2: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	out := make([]byte, len(data))
	cipher.NewCTR(block, iv).XORKeyStream(out, data)
	return out, nil
}

// ScanQR plays our phone scanning a QR code that whatsmeow emitted (an
// events.QR code or a GetQRChannel item's Code: "ref,noise key,identity
// key,adv secret"). It sends <pair-success> with a device identity signed
// by the phone and authenticated with the adv secret from the code, and
// waits until the client confirms (<pair-device-sign>). whatsmeow then
// emits events.PairSuccess, and after the server's stream error 515 it
// reconnects and logs in as the returned device, uploading its prekeys
// (the client reaches events.Connected about a second later).
func (p *Phone) ScanQR(ctx context.Context, code string) (types.JID, error) {
	// Later whatsmeow versions wrap the code in a link ("https://…#ref,…")
	// and append a fifth part, the client type; both forms are accepted.
	if i := strings.LastIndexByte(code, '#'); i >= 0 {
		code = code[i+1:]
	}
	parts := strings.Split(code, ",")
	if len(parts) != 4 && len(parts) != 5 {
		return types.EmptyJID, fmt.Errorf("wamock: QR code %q has %d comma-separated parts, want 4 or 5", code, len(parts))
	}
	var keys [3][]byte
	for i, part := range parts[1:4] {
		b, err := base64.StdEncoding.DecodeString(part)
		if err != nil || len(b) != 32 {
			return types.EmptyJID, fmt.Errorf("wamock: QR code part %d is not a base64 32-byte key (err: %v)", i+2, err)
		}
		keys[i] = b
	}
	ref, noisePub, identityPub, advSecret := parts[0], keys[0], keys[1], keys[2]
	c := p.s.pairingConn(func(pr *pairing) bool {
		for _, r := range pr.refs {
			if r == ref {
				return true
			}
		}
		return false
	})
	if c == nil {
		return types.EmptyJID, fmt.Errorf("wamock: no connected client is pairing with ref %q", ref)
	}
	pr := c.pairingState()
	// A QR code carries the client's keys; a real server would refuse a
	// scan whose keys are not the ones the client registered.
	if !bytes.Equal(noisePub, pr.noisePub[:]) {
		return types.EmptyJID, errors.New("wamock: QR code's noise key is not the pairing client's")
	}
	if !bytes.Equal(identityPub, pr.identityPub[:]) {
		return types.EmptyJID, errors.New("wamock: QR code's identity key is not the one the client registered")
	}
	return p.s.pairSuccess(ctx, c, pr, advSecret)
}

// EnterCode plays our phone's user typing a pairing code that PairPhone
// returned ("ABCD-EFGH"). The phone sends the client its wrapped ephemeral
// key (a link_code_companion_reg notification), derives the adv secret from
// the key bundle the client answers with, and then pairs as ScanQR does. A
// wrong code makes it fail, as the key bundle does not decrypt.
func (p *Phone) EnterCode(ctx context.Context, code string) (types.JID, error) {
	code = strings.ToUpper(strings.ReplaceAll(code, "-", ""))
	if len(code) != 8 {
		return types.EmptyJID, fmt.Errorf("wamock: pairing code %q does not have 8 characters", code)
	}
	c := p.s.pairingConn(func(pr *pairing) bool { return pr.linkRef != "" && pr.successID == "" })
	if c == nil {
		return types.EmptyJID, errors.New("wamock: no connected client asked for a pairing code (PairPhone)")
	}
	pr := c.pairingState()
	c.stateMu.Lock()
	wrapped, ref := pr.wrappedCompanion, pr.linkRef
	c.stateMu.Unlock()

	companionPub, err := linkCodeCTR(code, wrapped[:32], wrapped[32:48], wrapped[48:80])
	if err != nil {
		return types.EmptyJID, fmt.Errorf("wamock: unwrap companion key: %w", err)
	}
	ephemeral, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return types.EmptyJID, fmt.Errorf("wamock: generate phone ephemeral key: %w", err)
	}
	remote, err := ecdh.X25519().NewPublicKey(companionPub)
	if err != nil {
		return types.EmptyJID, fmt.Errorf("wamock: companion ephemeral key: %w", err)
	}
	shared, err := ephemeral.ECDH(remote)
	if err != nil {
		return types.EmptyJID, fmt.Errorf("wamock: ephemeral key agreement: %w", err)
	}
	salt, iv := make([]byte, 32), make([]byte, 16)
	_, _ = rand.Read(salt)
	_, _ = rand.Read(iv)
	wrappedPub, err := linkCodeCTR(code, salt, iv, ephemeral.PublicKey().Bytes())
	if err != nil {
		return types.EmptyJID, fmt.Errorf("wamock: wrap phone ephemeral key: %w", err)
	}
	result := make(chan linkFinish, 1)
	c.stateMu.Lock()
	pr.linkShared, pr.linkResult = shared, result
	c.stateMu.Unlock()

	notification := fillStanza(waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{
		"from": types.ServerJID,
		"type": "link_code_companion_reg",
	}, Content: []waBinary.Node{{
		Tag:   "link_code_companion_reg",
		Attrs: waBinary.Attrs{"stage": "primary_hello"},
		Content: []waBinary.Node{
			{Tag: "link_code_pairing_wrapped_primary_ephemeral_pub", Content: append(append(salt, iv...), wrappedPub...)},
			{Tag: "primary_identity_pub", Content: p.peer.identityPub()},
			{Tag: "link_code_pairing_ref", Content: []byte(ref)},
		},
	}}})
	if err = c.send(ctx, notification); err != nil {
		return types.EmptyJID, fmt.Errorf("wamock: send primary_hello: %w", err)
	}
	var finish linkFinish
	select {
	case finish = <-result:
	case <-ctx.Done():
		return types.EmptyJID, fmt.Errorf("wamock: waiting for companion_finish: %w", ctx.Err())
	}
	if finish.err != nil {
		return types.EmptyJID, fmt.Errorf("wamock: phone could not finish the code pairing: %w", finish.err)
	}
	return p.s.pairSuccess(ctx, c, pr, finish.advSecret)
}

// pairSuccess gives the pairing client the next device number of our
// account with <pair-success> and waits for its answer.
func (s *Server) pairSuccess(ctx context.Context, c *conn, pr *pairing, advSecret []byte) (types.JID, error) {
	c.stateMu.Lock()
	if pr.successID != "" {
		c.stateMu.Unlock()
		return types.EmptyJID, errors.New("wamock: this client was already paired")
	}
	// Claim the pairing first; the device number comes after, outside
	// stateMu, because s.mu must not be taken inside a conn's lock.
	pr.successID = newStanzaID()
	pr.result = make(chan error, 1)
	id, identityPub, result := pr.successID, pr.identityPub, pr.result
	c.stateMu.Unlock()
	num := s.allocateDevice()
	// The client cannot answer before <pair-success> is sent below, so
	// finishPairing sees the number.
	c.stateMu.Lock()
	pr.device = num
	c.stateMu.Unlock()

	jid, lid := s.ownPN, s.ownLID
	jid.Device, lid.Device = num, num
	container, err := s.phone.signDeviceIdentity(num, identityPub, advSecret)
	if err != nil {
		s.forgetDevice(num)
		return types.EmptyJID, err
	}
	err = c.send(ctx, waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{
		"from":  types.ServerJID,
		"type":  "set",
		"id":    id,
		"xmlns": "md",
	}, Content: []waBinary.Node{{Tag: "pair-success", Content: []waBinary.Node{
		{Tag: "device-identity", Content: container},
		{Tag: "platform", Attrs: waBinary.Attrs{"name": PairingPlatform}},
		{Tag: "device", Attrs: waBinary.Attrs{"jid": jid, "lid": lid}},
	}}}})
	if err != nil {
		s.forgetDevice(num)
		return types.EmptyJID, fmt.Errorf("wamock: send pair-success: %w", err)
	}
	s.log.Debug().Stringer("jid", jid).Msg("Phone sent pair-success")
	select {
	case err = <-result:
	case <-ctx.Done():
		return types.EmptyJID, fmt.Errorf("wamock: waiting for the client to confirm the pairing: %w", ctx.Err())
	}
	if err != nil {
		return types.EmptyJID, err
	}
	return jid, nil
}

// finishPairing handles the client's answer to <pair-success>: an error it
// found with our identity, or <pair-device-sign> with its device signature.
// On success the server asks it to log in again (stream error 515), as the
// real server does; whatsmeow reconnects by itself.
func (s *Server) finishPairing(ctx context.Context, c *conn, pr *pairing, iq *waBinary.Node) {
	c.stateMu.Lock()
	num, result := pr.device, pr.result
	c.stateMu.Unlock()
	err := s.checkPairDeviceSign(pr, iq)
	if err == nil && s.pairRestartDelay > 0 {
		select {
		case <-time.After(s.pairRestartDelay):
		case <-ctx.Done():
			err = fmt.Errorf("wamock: pairing: %w", ctx.Err())
		}
	}
	if err == nil {
		// Send the 515 before reporting success, so that once ScanQR
		// returns the client is already on its way to log in.
		if sendErr := c.send(ctx, waBinary.Node{Tag: "stream:error", Attrs: waBinary.Attrs{"code": "515"}}); sendErr != nil {
			err = fmt.Errorf("wamock: send stream error 515: %w", sendErr)
		}
	}
	if err != nil {
		s.forgetDevice(num)
		s.log.Warn().Err(err).Uint16("device", num).Msg("Pairing failed")
	} else {
		s.log.Debug().Uint16("device", num).Msg("Client paired; asked it to log in again")
	}
	result <- err
}

func (s *Server) checkPairDeviceSign(pr *pairing, iq *waBinary.Node) error {
	if strAttr(iq, "type") == "error" {
		errNode := iq.GetChildByTag("error")
		return fmt.Errorf("wamock: client rejected pair-success: %s %s", strAttr(&errNode, "code"), strAttr(&errNode, "text"))
	}
	sign, ok := iq.GetOptionalChildByTag("pair-device-sign", "device-identity")
	if !ok {
		return errors.New("wamock: client confirmed pair-success without pair-device-sign/device-identity")
	}
	raw, _ := sign.Content.([]byte)
	var identity waAdv.ADVSignedDeviceIdentity
	if err := proto.Unmarshal(raw, &identity); err != nil {
		return fmt.Errorf("wamock: parse pair-device-sign identity: %w", err)
	}
	if len(identity.GetDeviceSignature()) != 64 {
		return fmt.Errorf("wamock: device signature has %d bytes", len(identity.GetDeviceSignature()))
	}
	msg := concatBytes(whatsmeow.AdvDeviceSignaturePrefix, identity.GetDetails(), pr.identityPub[:], s.phone.peer.identityPub())
	if !ecc.VerifySignature(ecc.NewDjbECPublicKey(pr.identityPub), msg, [64]byte(identity.GetDeviceSignature())) {
		return errors.New("wamock: client's device signature does not verify")
	}
	return nil
}

// signDeviceIdentity builds the ADVSignedDeviceIdentityHMAC of
// <pair-success>: the phone signs the device's identity key (account
// signature) and the adv secret, which only the client and the phone know,
// authenticates the whole.
func (p *Phone) signDeviceIdentity(num uint16, identityPub [32]byte, advSecret []byte) ([]byte, error) {
	var rawID [4]byte
	_, _ = rand.Read(rawID[:])
	details, err := proto.Marshal(&waAdv.ADVDeviceIdentity{
		RawID:     proto.Uint32(binary.BigEndian.Uint32(rawID[:])),
		Timestamp: proto.Uint64(uint64(time.Now().Unix())),
		KeyIndex:  proto.Uint32(uint32(num)),
	})
	if err != nil {
		return nil, fmt.Errorf("wamock: marshal device identity: %w", err)
	}
	phonePub := p.peer.identityPub()
	signed, err := proto.Marshal(&waAdv.ADVSignedDeviceIdentity{
		Details:             details,
		AccountSignatureKey: phonePub,
		AccountSignature:    p.peer.sign(concatBytes(whatsmeow.AdvAccountSignaturePrefix, details, identityPub[:])),
	})
	if err != nil {
		return nil, fmt.Errorf("wamock: marshal signed device identity: %w", err)
	}
	mac := hmac.New(sha256.New, advSecret)
	mac.Write(signed)
	container, err := proto.Marshal(&waAdv.ADVSignedDeviceIdentityHMAC{Details: signed, HMAC: mac.Sum(nil)})
	if err != nil {
		return nil, fmt.Errorf("wamock: marshal device identity HMAC: %w", err)
	}
	return container, nil
}

// sign makes an XEdDSA signature with the device's identity key.
func (p *peerDevice) sign(msg []byte) []byte {
	p.mu.Lock()
	priv := p.store.identity.PrivateKey()
	p.mu.Unlock()
	sig := ecc.CalculateSignature(priv, msg)
	return sig[:]
}

// identityDH is X25519 of the device's identity key and pub.
func (p *peerDevice) identityDH(pub [32]byte) ([]byte, error) {
	p.mu.Lock()
	priv := p.store.identity.PrivateKey().Serialize()
	p.mu.Unlock()
	key, err := ecdh.X25519().NewPrivateKey(priv[:])
	if err != nil {
		return nil, fmt.Errorf("identity private key: %w", err)
	}
	remote, err := ecdh.X25519().NewPublicKey(pub[:])
	if err != nil {
		return nil, fmt.Errorf("companion identity key: %w", err)
	}
	shared, err := key.ECDH(remote)
	if err != nil {
		return nil, fmt.Errorf("identity key agreement: %w", err)
	}
	return shared, nil
}

func concatBytes(parts ...[]byte) []byte {
	var out []byte
	for _, part := range parts {
		out = append(out, part...)
	}
	return out
}

// allocateDevice reserves the next device number of our account.
func (s *Server) allocateDevice() uint16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	num := s.nextDevice
	s.nextDevice++
	s.devices[num] = &ownDevice{num: num}
	return num
}

// forgetDevice drops a device number whose pairing failed, so it does not
// show up in OwnDeviceJIDs or receive queued stanzas.
func (s *Server) forgetDevice(num uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.devices[num]; d != nil && !d.hasKeys {
		delete(s.devices, num)
	}
}
