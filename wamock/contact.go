package wamock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/protocol"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// ContactOptions describes a contact for AddContact.
type ContactOptions struct {
	// PN and LID are user parts ("15551230001", "200000000000001"). Empty
	// values are filled with fresh numbers.
	PN, LID string
	// Devices is the number of devices (default 1: just the primary, device
	// 0). Each has its own Signal identity.
	Devices int
	// NoLID makes a contact without a LID: usync reports none and its
	// messages come from the PN.
	NoLID bool
	// PushName is sent in the notify attribute of the contact's messages.
	PushName string
}

// Contact is another WhatsApp user played by the server, with real Signal
// identities and prekeys (go.mau.fi/libsignal).
type Contact struct {
	s        *Server
	pn, lid  types.JID
	pushName string

	// decryptMu serialises decryptions, so the server's decryption on
	// arrival and a test's Decrypt never use the same Signal keys twice.
	decryptMu sync.Mutex
	mu        sync.Mutex
	devices   []*peerDevice
	decrypted map[string]*waE2E.Message
	received  []*waE2E.Message
	// pnChat marks our devices whose last message to the contact was
	// addressed to its PN: the contact answers them from the PN too.
	pnChat map[uint16]bool
}

// AddContact creates a contact the server knows: usync lists its devices,
// prekey fetches get its bundles, and it decrypts what our client sends it.
func (s *Server) AddContact(opts ContactOptions) *Contact {
	s.mu.Lock()
	s.nextContact++
	n := s.nextContact
	s.mu.Unlock()
	if opts.PN == "" {
		opts.PN = fmt.Sprintf("1555123%04d", n)
	}
	if opts.LID == "" && !opts.NoLID {
		opts.LID = fmt.Sprintf("2000000000%05d", n)
	}
	if opts.Devices <= 0 {
		opts.Devices = 1
	}
	if opts.PushName == "" {
		opts.PushName = "Contact " + opts.PN
	}
	c := &Contact{
		s:         s,
		pn:        types.NewJID(opts.PN, types.DefaultUserServer),
		pushName:  opts.PushName,
		decrypted: make(map[string]*waE2E.Message),
		pnChat:    make(map[uint16]bool),
	}
	if !opts.NoLID {
		c.lid = types.NewJID(opts.LID, types.HiddenUserServer)
	}
	for i := 0; i < opts.Devices; i++ {
		dev, err := newPeerDevice()
		if err != nil {
			// Only a broken random source makes key generation fail.
			panic(fmt.Errorf("wamock: create contact device: %w", err))
		}
		c.devices = append(c.devices, dev)
	}
	registerAddresses(c.pn, c.lid)
	s.mu.Lock()
	s.contacts = append(s.contacts, c)
	s.contactByID["pn:"+c.pn.User] = c
	if !c.lid.IsEmpty() {
		s.contactByID["lid:"+c.lid.User] = c
	}
	s.mu.Unlock()
	return c
}

// Contacts returns the contacts in the order they were added.
func (s *Server) Contacts() []*Contact {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Contact(nil), s.contacts...)
}

// Contact finds a contact by its PN or LID (the device part is ignored);
// nil if there is none.
func (s *Server) Contact(jid types.JID) *Contact { return s.contactFor(jid) }

// PN is the contact's phone-number JID (no device part).
func (c *Contact) PN() types.JID { return c.pn }

// LID is the contact's LID (no device part), empty with NoLID.
func (c *Contact) LID() types.JID { return c.lid }

// JID is the contact's main address: the LID when it has one, else the PN.
// Its messages come from the LID unless our device last wrote to its PN (a
// PN-addressed chat), in which case they come from the PN with sender_lid.
func (c *Contact) JID() types.JID {
	if !c.lid.IsEmpty() {
		return c.lid
	}
	return c.pn
}

// PushName is the contact's display name.
func (c *Contact) PushName() string { return c.pushName }

func (c *Contact) deviceIDs() []uint16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]uint16, len(c.devices))
	for i := range c.devices {
		ids[i] = uint16(i)
	}
	return ids
}

func (c *Contact) device(id uint16) *peerDevice {
	c.mu.Lock()
	defer c.mu.Unlock()
	if int(id) >= len(c.devices) {
		return nil
	}
	return c.devices[id]
}

// ownAddr is the Signal address server-side peers use for one of our
// companion devices. Only the peers' own stores see it, so it just has to
// be stable per device.
func (s *Server) ownAddr(num uint16) *protocol.SignalAddress {
	return protocol.NewSignalAddress(s.ownLID.User, uint32(num))
}

// ownBundleFunc returns a function that takes a prekey bundle of our device
// num from what it uploaded.
func (s *Server) ownBundleFunc(num uint16) func() (*prekey.Bundle, error) {
	return func() (*prekey.Bundle, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		d := s.devices[num]
		if d == nil {
			return nil, fmt.Errorf("unknown device %d", num)
		}
		return d.takeBundle()
	}
}

// keyedDevices lists our devices that uploaded keys: the ones messages can
// be encrypted to.
func (s *Server) keyedDevices() []uint16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []uint16
	for _, d := range s.sortedDevicesLocked() {
		if d.hasKeys {
			out = append(out, d.num)
		}
	}
	return out
}

// ErrNoOwnDevices is returned when a message should go to our devices but
// none has uploaded prekeys yet (no client ever connected).
var ErrNoOwnDevices = errors.New("wamock: none of our devices has uploaded prekeys yet")

// SendText sends a text message from the contact's primary device to each
// of our devices. The client emits events.Message with the text.
func (c *Contact) SendText(ctx context.Context, text string) error {
	_, err := c.SendMessage(ctx, &waE2E.Message{Conversation: proto.String(text)})
	return err
}

// SendMessage Signal-encrypts msg from the contact's primary device to each
// of our devices (a prekey message when there is no session yet, using the
// prekeys our client uploaded) and delivers it, queueing it for devices that
// are offline. It returns the message ID.
func (c *Contact) SendMessage(ctx context.Context, msg *waE2E.Message) (types.MessageID, error) {
	plaintext, err := proto.Marshal(msg)
	if err != nil {
		return "", fmt.Errorf("wamock: marshal message: %w", err)
	}
	targets := c.s.keyedDevices()
	if len(targets) == 0 {
		return "", ErrNoOwnDevices
	}
	id := newMessageID()
	sender := c.device(0)
	for _, num := range targets {
		encType, ciphertext, err := sender.encrypt(ctx, c.s.ownAddr(num), c.s.ownBundleFunc(num), plaintext)
		if err != nil {
			return "", fmt.Errorf("wamock: %s: %w", c.pn.User, err)
		}
		attrs := waBinary.Attrs{
			"id":     id,
			"t":      time.Now().Unix(),
			"type":   "text",
			"notify": c.pushName,
		}
		c.mu.Lock()
		pnChat := c.pnChat[num] || c.lid.IsEmpty()
		c.mu.Unlock()
		// Answer in the addressing the chat uses. The other identity goes
		// along, so whatsmeow learns the mapping and, for a PN chat,
		// moves its session to the LID.
		if pnChat {
			attrs["from"] = c.pn
			if !c.lid.IsEmpty() {
				attrs["sender_lid"] = c.lid
			}
		} else {
			attrs["from"] = c.lid
			attrs["sender_pn"] = c.pn
		}
		node := waBinary.Node{Tag: "message", Attrs: attrs, Content: []waBinary.Node{{
			Tag:     "enc",
			Attrs:   waBinary.Attrs{"v": "2", "type": encType},
			Content: ciphertext,
		}}}
		if err = c.s.deliver(ctx, num, node); err != nil {
			return "", err
		}
	}
	return id, nil
}

// Reinstall gives every device of the contact a new identity key, signed
// prekey and registration ID and forgets its sessions. The contact's next
// message is then a prekey message with an unknown identity, which makes
// whatsmeow emit events.IdentityChange{Implicit: true}.
func (c *Contact) Reinstall() {
	c.mu.Lock()
	devices := append([]*peerDevice(nil), c.devices...)
	c.mu.Unlock()
	for _, d := range devices {
		if err := d.reinstall(); err != nil {
			c.s.failf("reinstall %s: %v", c.pn.User, err)
		}
	}
}

// NotifyIdentityChange pushes the server's identity-change notification for
// the contact (<notification type="encrypt"><identity/>), on which
// whatsmeow deletes the contact's identities and sessions and emits
// events.IdentityChange{Implicit: false}. The contact forgets its sessions
// too, so its next message starts a new one.
func (c *Contact) NotifyIdentityChange() error {
	c.mu.Lock()
	devices := append([]*peerDevice(nil), c.devices...)
	c.mu.Unlock()
	for _, d := range devices {
		d.mu.Lock()
		_ = d.store.DeleteAllSessions(context.Background())
		d.mu.Unlock()
	}
	node := waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{
		"from": c.JID(),
		"type": "encrypt",
		"id":   newStanzaID(),
		"t":    time.Now().Unix(),
	}, Content: []waBinary.Node{{Tag: "identity"}}}
	return c.s.deliverAll(context.Background(), node)
}

// Decrypt returns the message in a <message> stanza our client sent to this
// contact. Messages the server delivered were already decrypted on arrival
// (Signal keys can be used only once), so this usually returns that result.
func (c *Contact) Decrypt(msg *waBinary.Node) (*waE2E.Message, error) {
	id := strAttr(msg, "id")
	if cached, ok := c.alreadyDecrypted(id); ok {
		return cached, nil
	}
	origin, ok := c.s.obs.originOf(msg)
	if !ok {
		return nil, fmt.Errorf("wamock: stanza %s was not received by this server", id)
	}
	return c.decryptStanza(context.Background(), msg, origin)
}

// Messages returns what the contact decrypted, in arrival order.
func (c *Contact) Messages() []*waE2E.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*waE2E.Message(nil), c.received...)
}

// ownsJID tells whether a participant JID is one of the contact's devices.
func (c *Contact) ownsJID(jid types.JID) bool {
	switch jid.Server {
	case types.DefaultUserServer, types.HostedServer:
		return jid.User == c.pn.User
	case types.HiddenUserServer, types.HostedLIDServer:
		return !c.lid.IsEmpty() && jid.User == c.lid.User
	}
	return false
}

// alreadyDecrypted returns the message decrypted earlier under id: a
// stanza is decrypted once, whoever asks first (the server on arrival, or a
// test), since the Signal keys cannot be used twice.
func (c *Contact) alreadyDecrypted(id string) (*waE2E.Message, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	msg, ok := c.decrypted[id]
	return msg, ok
}

// decryptStanza decrypts every <enc> of the message addressed to one of
// the contact's devices (each device keeps its own session) and returns the
// first result.
func (c *Contact) decryptStanza(ctx context.Context, msg *waBinary.Node, fromDevice uint16) (*waE2E.Message, error) {
	id := strAttr(msg, "id")
	c.decryptMu.Lock()
	defer c.decryptMu.Unlock()
	if cached, ok := c.alreadyDecrypted(id); ok {
		return cached, nil
	}
	var result *waE2E.Message
	var firstErr error
	found := false
	for _, target := range participantEncs(msg) {
		if !c.ownsJID(target.jid) {
			continue
		}
		found = true
		parsed, err := c.openEnc(ctx, target, fromDevice)
		if err != nil {
			firstErr = cmpErr(firstErr, err)
			continue
		}
		if result == nil {
			result = parsed
		}
	}
	if !found {
		return nil, fmt.Errorf("wamock: message %s has no <enc> for %s", id, c.pn.User)
	}
	if result == nil {
		return nil, fmt.Errorf("wamock: decrypt message %s for %s: %w", id, c.pn.User, firstErr)
	}
	c.mu.Lock()
	c.decrypted[id] = result
	c.received = append(c.received, result)
	c.pnChat[fromDevice] = jidAttr(msg, "to").Server == types.DefaultUserServer
	c.mu.Unlock()
	return result, nil
}

// openEnc decrypts one <enc> our device addressed to one of the contact's
// devices and parses the message in it; (nil, nil) when the contact has no
// such device.
func (c *Contact) openEnc(ctx context.Context, target encTarget, fromDevice uint16) (*waE2E.Message, error) {
	dev := c.device(target.jid.Device)
	if dev == nil {
		return nil, nil
	}
	plaintext, err := dev.decrypt(ctx, c.s.ownAddr(fromDevice), target.encType, target.ciphertext)
	if err != nil {
		return nil, fmt.Errorf("device %d: %w", target.jid.Device, err)
	}
	var parsed waE2E.Message
	if err = proto.Unmarshal(plaintext, &parsed); err != nil {
		return nil, fmt.Errorf("device %d: unmarshal: %w", target.jid.Device, err)
	}
	return &parsed, nil
}

func cmpErr(first, next error) error {
	if first != nil {
		return first
	}
	return next
}

// encTarget is one <to jid><enc/></to> of an outgoing message, or the
// message's own <enc> (peer messages) with the message's "to".
type encTarget struct {
	jid        types.JID
	encType    string
	ciphertext []byte
}

func participantEncs(msg *waBinary.Node) []encTarget {
	var out []encTarget
	add := func(jid types.JID, enc waBinary.Node) {
		ciphertext, _ := enc.Content.([]byte)
		out = append(out, encTarget{jid: jid, encType: strAttr(&enc, "type"), ciphertext: ciphertext})
	}
	for _, child := range msg.GetChildren() {
		switch child.Tag {
		case "participants":
			for _, to := range child.GetChildren() {
				if to.Tag != "to" {
					continue
				}
				if enc, ok := to.GetOptionalChildByTag("enc"); ok {
					add(jidAttr(&to, "jid"), enc)
				}
			}
		case "enc":
			add(jidAttr(msg, "to"), child)
		}
	}
	return out
}
