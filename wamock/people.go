package wamock

import (
	"context"
	"errors"
	"fmt"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// ReceiptType is the kind of receipt a contact sends for our messages.
type ReceiptType string

// The receipts a contact sends. whatsmeow reports them as events.Receipt
// with Type "" (delivered), "read" and "played".
const (
	ReceiptDelivered ReceiptType = ""
	ReceiptRead      ReceiptType = "read"
	ReceiptPlayed    ReceiptType = "played"
)

// SendReceipt makes the contact send a receipt for messages our client sent
// it (all in one chat: the contact's, or a group's): a delivery receipt, or
// a read or played one. Our devices get it, queued for the offline ones,
// and whatsmeow emits events.Receipt. It returns the receipt's ID (the first
// message's ID) for WaitHandled.
//
// It answers in the addressing the message used: from the contact's LID or
// PN, whichever our client wrote to, or from the group with the contact as
// participant.
func (c *Contact) SendReceipt(ctx context.Context, typ ReceiptType, ids ...types.MessageID) (string, error) {
	if len(ids) == 0 {
		return "", errors.New("wamock: SendReceipt needs at least one message ID")
	}
	msg := c.s.MessageByID(ids[0])
	if msg == nil {
		return "", fmt.Errorf("wamock: our client sent no message %s", ids[0])
	}
	node := c.receiptNode(msg, typ, ids)
	return ids[0], c.s.deliverAll(ctx, node)
}

// receiptNode builds the contact's receipt for messages like msg.
func (c *Contact) receiptNode(msg *waBinary.Node, typ ReceiptType, ids []types.MessageID) waBinary.Node {
	to := jidAttr(msg, "to")
	attrs := waBinary.Attrs{"id": ids[0], "t": time.Now().Unix()}
	if typ != ReceiptDelivered {
		attrs["type"] = string(typ)
	}
	if to.Server == types.GroupServer {
		attrs["from"] = to
		attrs["participant"] = c.groupAddress(c.s.group(to))
	} else {
		attrs["from"] = c.pn
		if to.Server == types.HiddenUserServer && !c.lid.IsEmpty() {
			attrs["from"] = c.lid
		}
	}
	node := waBinary.Node{Tag: "receipt", Attrs: attrs}
	if len(ids) > 1 {
		items := make([]waBinary.Node, 0, len(ids)-1)
		for _, id := range ids[1:] {
			items = append(items, waBinary.Node{Tag: "item", Attrs: waBinary.Attrs{"id": id}})
		}
		node.Content = []waBinary.Node{{Tag: "list", Content: items}}
	}
	return node
}

// SetAutoReceipts makes the contact answer every message it gets from our
// client, right after the server's ack, with these receipts, in order: for
// example SetAutoReceipts(ReceiptDelivered, ReceiptRead). No types turns
// automatic receipts off (the default). WaitHandled with the message's ID
// waits for the receipts once SendMessage has returned.
func (c *Contact) SetAutoReceipts(types ...ReceiptType) {
	h := &c.s.helpers
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.autoReceipts == nil {
		h.autoReceipts = make(map[*Contact][]ReceiptType)
	}
	h.autoReceipts[c] = append([]ReceiptType(nil), types...)
}

func (c *Contact) autoReceiptTypes() []ReceiptType {
	h := &c.s.helpers
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.autoReceipts[c]
}

// pendingReceipts are the automatic receipts for a message: built and noted
// for WaitHandled before the server acks the message, so that a test that
// waits right after SendMessage returns finds them, and sent after the ack,
// as the real server orders them.
type pendingReceipts []waBinary.Node

// autoReceiptsFor builds the automatic receipts of the contacts that got
// msg: the recipient of a 1:1 message, or the members of a group.
func (s *Server) autoReceiptsFor(msg *waBinary.Node, recipient *Contact) pendingReceipts {
	var receivers []*Contact
	if recipient != nil {
		receivers = append(receivers, recipient)
	} else if g := s.group(jidAttr(msg, "to")); g != nil {
		receivers = g.Members()
	}
	id := strAttr(msg, "id")
	var out pendingReceipts
	for _, c := range receivers {
		if !c.got(id) {
			continue
		}
		for _, typ := range c.autoReceiptTypes() {
			s.expectDelivery(id, "receipt")
			out = append(out, c.receiptNode(msg, typ, []types.MessageID{id}))
		}
	}
	return out
}

// send delivers the receipts to our devices.
func (p pendingReceipts) send(ctx context.Context, s *Server) {
	for _, node := range p {
		if err := s.deliverAll(ctx, node); err != nil {
			s.log.Warn().Err(err).Msg("Failed to deliver a contact's receipt")
		}
		s.deliveryDone(strAttr(&node, "id"))
	}
}

// got tells whether the contact decrypted the message with this ID.
func (c *Contact) got(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.decrypted[id]
	return ok
}

// knownDevices lists our device numbers.
func (s *Server) knownDevices() []uint16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []uint16
	for _, d := range s.sortedDevicesLocked() {
		out = append(out, d.num)
	}
	return out
}

// chatAddress is the address the contact uses in its 1:1 chat with one of
// our devices: the one that device last wrote to (see SendMessage).
func (c *Contact) chatAddress(num uint16) types.JID {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pnChat[num] || c.lid.IsEmpty() {
		return c.pn
	}
	return c.lid
}

// handlePresence answers a presence subscription from our client with the
// subscribed contact's presence, and remembers it for SetAvailable. Our
// client's own presence (available, unavailable) is only recorded.
func (s *Server) handlePresence(ctx context.Context, c *conn, node *waBinary.Node) {
	if strAttr(node, "type") != "subscribe" {
		return
	}
	to := jidAttr(node, "to")
	contact := s.contactFor(to)
	if contact == nil {
		return
	}
	num := c.deviceNum()
	h := &s.helpers
	h.mu.Lock()
	if h.subscribed == nil {
		h.subscribed = make(map[*Contact]map[uint16]bool)
	}
	if h.subscribed[contact] == nil {
		h.subscribed[contact] = make(map[uint16]bool)
	}
	h.subscribed[contact][num] = true
	available := h.available[contact]
	h.mu.Unlock()
	if err := c.send(ctx, contact.presenceNode(to.ToNonAD(), available)); err != nil {
		s.log.Warn().Err(err).Msg("Failed to answer a presence subscription")
	}
}

// presenceNode is the contact's presence as the server relays it; whatsmeow
// emits events.Presence{From: from, Unavailable, LastSeen}.
func (c *Contact) presenceNode(from types.JID, available bool) waBinary.Node {
	attrs := waBinary.Attrs{"from": from}
	if !available {
		attrs["type"] = "unavailable"
		attrs["last"] = time.Now().Unix()
	}
	return waBinary.Node{Tag: "presence", Attrs: attrs}
}

// SetAvailable sets whether the contact is online. Our devices that
// subscribed to its presence (whatsmeow's SubscribePresence) and are
// connected get the change at once; a later subscription is answered with
// it. Contacts start unavailable. It returns a key for WaitHandled.
func (c *Contact) SetAvailable(ctx context.Context, available bool) (string, error) {
	h := &c.s.helpers
	h.mu.Lock()
	if h.available == nil {
		h.available = make(map[*Contact]bool)
	}
	h.available[c] = available
	var devices []uint16
	for num := range h.subscribed[c] {
		devices = append(devices, num)
	}
	h.mu.Unlock()
	key := "presence-" + newStanzaID()
	c.s.noteNoDelivery(key, "presence")
	var errs []error
	for _, num := range devices {
		node := c.presenceNode(c.chatAddress(num), available)
		errs = append(errs, c.s.sendLive(ctx, key, num, node))
	}
	return key, errors.Join(errs...)
}

// SendChatPresence makes the contact type (types.ChatPresenceComposing,
// with media "" or types.ChatPresenceMediaAudio) or stop typing
// (types.ChatPresencePaused) in its chat with us. Chat states are not
// queued: only our connected devices get it, and whatsmeow emits
// events.ChatPresence. It returns a key for WaitHandled.
func (c *Contact) SendChatPresence(ctx context.Context, state types.ChatPresence, media types.ChatPresenceMedia) (string, error) {
	key := "chatstate-" + newStanzaID()
	c.s.noteNoDelivery(key, "chatstate")
	var errs []error
	for _, cn := range c.s.loggedInConns() {
		num := cn.deviceNum()
		child := waBinary.Node{Tag: string(state)}
		if media != "" {
			child.Attrs = waBinary.Attrs{"media": string(media)}
		}
		node := waBinary.Node{Tag: "chatstate", Attrs: waBinary.Attrs{"from": c.chatAddress(num)}, Content: []waBinary.Node{child}}
		errs = append(errs, c.s.sendLive(ctx, key, num, node))
	}
	return key, errors.Join(errs...)
}

// sendLive sends a stanza the server does not queue (presence, chat state)
// to device num if it is logged in, and notes it under key for WaitHandled.
// It does not wait for the end of the client's login, as queued stanzas
// do: a client that just reached events.Connected must get it.
func (s *Server) sendLive(ctx context.Context, key string, num uint16, node waBinary.Node) error {
	for _, c := range s.loggedInConns() {
		if c.deviceNum() != num {
			continue
		}
		s.noteDelivery(key, num, &node)
		return c.send(ctx, node)
	}
	return nil
}
