package wamock

import (
	"context"
	"encoding/binary"
	"fmt"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/util/optional"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// handleNode dispatches one stanza from a client. It runs on the
// connection's read goroutine, so replies keep the order of requests.
func (s *Server) handleNode(ctx context.Context, c *conn, node *waBinary.Node) {
	if c.pairingState() != nil {
		// An unpaired client has no device yet; it only takes part in the
		// pairing.
		s.handlePairingNode(ctx, c, node)
		return
	}
	switch node.Tag {
	case "iq":
		s.handleIQ(ctx, c, node)
	case "message":
		s.handleClientMessage(ctx, c, node)
	case "presence":
		s.handlePresence(ctx, c, node)
	default:
		// Receipts, acks, presences and chat states are only recorded.
	}
}

// ResultIQ builds an <iq type="result"> reply to iq with the given children.
func ResultIQ(iq *waBinary.Node, children ...waBinary.Node) *waBinary.Node {
	reply := &waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{
		"id":   iq.Attrs["id"],
		"type": "result",
		"from": types.ServerJID,
	}}
	if len(children) > 0 {
		reply.Content = children
	}
	return reply
}

// ErrorIQ builds an <iq type="error"><error code=.. text=../></iq> reply.
func ErrorIQ(iq *waBinary.Node, code int, text string) *waBinary.Node {
	return &waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{
		"id":   iq.Attrs["id"],
		"type": "error",
		"from": types.ServerJID,
	}, Content: []waBinary.Node{{Tag: "error", Attrs: waBinary.Attrs{"code": code, "text": text}}}}
}

// SetIQHandler installs a handler for client IQs with the given xmlns. It
// takes precedence over the built-in handling; when it returns nil the
// built-in handling answers. The server fills in what the reply lacks, as
// for SetPrivacyHandler. A nil h removes the handler.
func (s *Server) SetIQHandler(xmlns string, h func(iq *waBinary.Node) *waBinary.Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h == nil {
		delete(s.iqHandlers, xmlns)
		return
	}
	s.iqHandlers[xmlns] = h
}

func (s *Server) reply(ctx context.Context, c *conn, reply *waBinary.Node) {
	if err := c.send(ctx, *reply); err != nil {
		s.log.Warn().Err(err).Msg("Failed to send IQ reply")
	}
}

func (s *Server) handleIQ(ctx context.Context, c *conn, iq *waBinary.Node) {
	typ := strAttr(iq, "type")
	if typ == "result" || typ == "error" {
		// Replies to IQs we sent; the server sends none, so just record.
		return
	}
	xmlns := strAttr(iq, "xmlns")
	if xmlns == "passive" {
		// The passive/active IQ is the last step of whatsmeow's login, right
		// before events.Connected: after answering it, hand over what
		// waited for the device.
		defer s.flushPending(ctx, c)
	}
	s.mu.Lock()
	custom := s.iqHandlers[xmlns]
	s.mu.Unlock()
	if custom != nil {
		if reply := custom(iq); reply != nil {
			s.reply(ctx, c, completeReply(iq, reply))
			return
		}
	}
	if xmlns == "w:g2" {
		// Group IQs may be followed by notifications, which must come
		// after the reply.
		s.handleGroupIQ(ctx, c, iq)
		return
	}
	var reply *waBinary.Node
	switch xmlns {
	case "encrypt":
		reply = s.handleEncryptIQ(c, iq)
	case "passive", "w:p":
		reply = ResultIQ(iq)
	case "usync":
		reply = s.handleUsync(iq)
	case "privacy":
		reply = s.handlePrivacyIQ(iq)
	case "abt":
		reply = s.handleABPropsIQ(iq)
	case "w:m":
		reply = s.handleMediaConnIQ(iq)
	case "w:mex":
		reply = s.handleMexIQ(iq)
	case "w:sync:app:state":
		reply = s.handleAppStateIQ(ctx, iq)
	case "w:profile:picture":
		// No one has a profile picture; whatsmeow turns this into
		// ErrProfilePictureNotSet.
		reply = ErrorIQ(iq, 404, "item-not-found")
	default:
		reply = ResultIQ(iq)
	}
	s.reply(ctx, c, reply)
}

// handleEncryptIQ covers prekey counting, upload and bundle fetches.
func (s *Server) handleEncryptIQ(c *conn, iq *waBinary.Node) *waBinary.Node {
	typ := strAttr(iq, "type")
	switch {
	case typ == "get" && hasChild(iq, "count"):
		s.mu.Lock()
		count := 0
		if d := s.devices[c.deviceNum()]; d != nil {
			count = len(d.preKeys)
		}
		s.mu.Unlock()
		return ResultIQ(iq, waBinary.Node{Tag: "count", Attrs: waBinary.Attrs{"value": count}})
	case typ == "set" && hasChild(iq, "registration"):
		if err := s.storeUploadedKeys(c.deviceNum(), iq); err != nil {
			s.recordError(fmt.Errorf("device %d: prekey upload: %w", c.deviceNum(), err))
			return ErrorIQ(iq, 400, "bad-request")
		}
		return ResultIQ(iq)
	case typ == "get" && hasChild(iq, "key"):
		return s.handlePreKeyFetch(iq)
	default:
		return ResultIQ(iq)
	}
}

func hasChild(node *waBinary.Node, tag string) bool {
	_, ok := node.GetOptionalChildByTag(tag)
	return ok
}

func childBytes(node *waBinary.Node, tag string) []byte {
	child, ok := node.GetOptionalChildByTag(tag)
	if !ok {
		return nil
	}
	b, _ := child.Content.([]byte)
	return b
}

// storeUploadedKeys keeps the keys of <iq xmlns="encrypt" type="set">.
func (s *Server) storeUploadedKeys(num uint16, iq *waBinary.Node) error {
	reg := childBytes(iq, "registration")
	identityPub := childBytes(iq, "identity")
	if len(reg) != 4 || len(identityPub) != 32 {
		return fmt.Errorf("registration (%d bytes) or identity (%d bytes) malformed", len(reg), len(identityPub))
	}
	skey, ok := iq.GetOptionalChildByTag("skey")
	if !ok {
		return fmt.Errorf("no <skey>")
	}
	signedID, signedPub, err := parseKeyNode(&skey)
	if err != nil {
		return fmt.Errorf("signed prekey: %w", err)
	}
	sig := childBytes(&skey, "signature")
	if len(sig) != 64 {
		return fmt.Errorf("signed prekey signature has %d bytes", len(sig))
	}
	list, _ := iq.GetOptionalChildByTag("list")
	var uploaded []uploadedPreKey
	for _, keyNode := range list.GetChildren() {
		id, pub, err := parseKeyNode(&keyNode)
		if err != nil {
			return fmt.Errorf("prekey: %w", err)
		}
		uploaded = append(uploaded, uploadedPreKey{id: id, pub: pub})
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.devices[num]
	if d == nil {
		d = &ownDevice{num: num}
		s.devices[num] = d
	}
	newIdentity := [32]byte(identityPub)
	if d.hasKeys && d.identityPub != newIdentity {
		// A reinstalled device: the old one-time keys are worthless.
		d.preKeys = nil
	}
	d.hasKeys = true
	d.registrationID = binary.BigEndian.Uint32(reg)
	d.identityPub = newIdentity
	d.signedID = signedID
	d.signedPub = signedPub
	d.signedSig = [64]byte(sig)
	known := make(map[uint32]bool, len(d.preKeys))
	for _, pk := range d.preKeys {
		known[pk.id] = true
	}
	for _, pk := range uploaded {
		if !known[pk.id] {
			d.preKeys = append(d.preKeys, pk)
		}
	}
	s.log.Debug().Uint16("device", num).Int("prekeys", len(uploaded)).Int("available", len(d.preKeys)).Msg("Stored uploaded prekeys")
	return nil
}

// parseKeyNode reads <key|skey><id>3 bytes</id><value>32 bytes</value>.
func parseKeyNode(node *waBinary.Node) (uint32, [32]byte, error) {
	id := childBytes(node, "id")
	value := childBytes(node, "value")
	if len(id) != 3 || len(value) != 32 {
		return 0, [32]byte{}, fmt.Errorf("id (%d bytes) or value (%d bytes) malformed", len(id), len(value))
	}
	return uint32(id[0])<<16 | uint32(id[1])<<8 | uint32(id[2]), [32]byte(value), nil
}

func keyIDBytes(id uint32) []byte {
	return []byte{byte(id >> 16), byte(id >> 8), byte(id)}
}

func uint32Bytes(v uint32) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, v)
	return b
}

// handlePreKeyFetch answers <iq xmlns="encrypt" type="get"><key><user jid=../>.
func (s *Server) handlePreKeyFetch(iq *waBinary.Node) *waBinary.Node {
	keyNode := iq.GetChildByTag("key")
	var users []waBinary.Node
	for _, req := range keyNode.GetChildren() {
		if req.Tag != "user" {
			continue
		}
		jid := jidAttr(&req, "jid")
		bundleNode, err := s.bundleNodeFor(jid)
		if err != nil {
			s.log.Debug().Err(err).Stringer("jid", jid).Msg("No prekey bundle")
			users = append(users, waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid}, Content: []waBinary.Node{{
				Tag: "error", Attrs: waBinary.Attrs{"code": 404, "text": "item-not-found"},
			}}})
			continue
		}
		users = append(users, *bundleNode)
	}
	return ResultIQ(iq, waBinary.Node{Tag: "list", Content: users})
}

// bundleNodeFor finds the device behind jid (a contact's, our phone's, or
// one of our companions) and renders its prekey bundle.
func (s *Server) bundleNodeFor(jid types.JID) (*waBinary.Node, error) {
	if s.isOwnUser(jid) {
		if jid.Device == 0 {
			return s.phone.peer.bundleNode(jid)
		}
		s.mu.Lock()
		d := s.devices[jid.Device]
		var b bundleKeys
		var err error
		if d == nil {
			err = fmt.Errorf("no device %d", jid.Device)
		} else {
			b, err = d.bundleKeys()
		}
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return b.node(jid), nil
	}
	contact := s.contactFor(jid)
	if contact == nil {
		return nil, fmt.Errorf("unknown user %s", jid)
	}
	peer := contact.device(jid.Device)
	if peer == nil {
		return nil, fmt.Errorf("%s has no device %d", jid.User, jid.Device)
	}
	return peer.bundleNode(jid)
}

// bundleKeys is the public half of a prekey bundle.
type bundleKeys struct {
	registrationID uint32
	identityPub    [32]byte
	preKeyID       uint32
	preKeyPub      *[32]byte
	signedID       uint32
	signedPub      [32]byte
	signedSig      [64]byte
}

// bundle converts the keys for libsignal's session builder.
func (b bundleKeys) bundle(deviceID uint32) *prekey.Bundle {
	identityKey := identity.NewKey(ecc.NewDjbECPublicKey(b.identityPub))
	signed := ecc.NewDjbECPublicKey(b.signedPub)
	if b.preKeyPub == nil {
		return prekey.NewBundle(b.registrationID, deviceID, optional.NewEmptyUint32(), b.signedID,
			nil, signed, b.signedSig, identityKey)
	}
	return prekey.NewBundle(b.registrationID, deviceID, optional.NewOptionalUint32(b.preKeyID), b.signedID,
		ecc.NewDjbECPublicKey(*b.preKeyPub), signed, b.signedSig, identityKey)
}

// node renders the keys as a <user> of a prekey fetch reply.
func (b bundleKeys) node(jid types.JID) *waBinary.Node {
	content := []waBinary.Node{
		{Tag: "registration", Content: uint32Bytes(b.registrationID)},
		{Tag: "type", Content: []byte{0x05}},
		{Tag: "identity", Content: b.identityPub[:]},
	}
	if b.preKeyPub != nil {
		content = append(content, waBinary.Node{Tag: "key", Content: []waBinary.Node{
			{Tag: "id", Content: keyIDBytes(b.preKeyID)},
			{Tag: "value", Content: b.preKeyPub[:]},
		}})
	}
	content = append(content, waBinary.Node{Tag: "skey", Content: []waBinary.Node{
		{Tag: "id", Content: keyIDBytes(b.signedID)},
		{Tag: "value", Content: b.signedPub[:]},
		{Tag: "signature", Content: b.signedSig[:]},
	}})
	return &waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid}, Content: content}
}

// bundleKeys hands out the device's keys for another of our devices,
// consuming a one-time prekey. The caller holds s.mu.
func (d *ownDevice) bundleKeys() (bundleKeys, error) {
	if !d.hasKeys {
		return bundleKeys{}, fmt.Errorf("device %d has not uploaded prekeys", d.num)
	}
	b := bundleKeys{
		registrationID: d.registrationID,
		identityPub:    d.identityPub,
		signedID:       d.signedID,
		signedPub:      d.signedPub,
		signedSig:      d.signedSig,
	}
	if len(d.preKeys) > 0 {
		pk := d.preKeys[0]
		d.preKeys = d.preKeys[1:]
		b.preKeyID = pk.id
		b.preKeyPub = &pk.pub
	}
	return b, nil
}

// isOwnUser tells whether jid belongs to our account (PN or LID).
func (s *Server) isOwnUser(jid types.JID) bool {
	switch jid.Server {
	case types.DefaultUserServer, types.HostedServer:
		return jid.User == s.ownPN.User
	case types.HiddenUserServer, types.HostedLIDServer:
		return jid.User == s.ownLID.User
	}
	return false
}

// contactFor finds the contact by PN or LID user.
func (s *Server) contactFor(jid types.JID) *Contact {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch jid.Server {
	case types.DefaultUserServer, types.HostedServer:
		return s.contactByID["pn:"+jid.User]
	case types.HiddenUserServer, types.HostedLIDServer:
		return s.contactByID["lid:"+jid.User]
	}
	return nil
}
