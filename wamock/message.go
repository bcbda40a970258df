package wamock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// handleClientMessage acks a <message> our client sent, as the message rule
// decides, and hands it to its recipient: a contact or, for messages to our
// own account, the phone.
func (s *Server) handleClientMessage(ctx context.Context, c *conn, msg *waBinary.Node) {
	to := jidAttr(msg, "to")
	from := c.deviceNum()
	isPeer := strAttr(msg, "category") == "peer"
	contact := s.contactFor(to)

	code := 0
	s.mu.Lock()
	rule := s.rule
	s.mu.Unlock()
	if rule != nil && !isPeer {
		code = rule(msg, contact)
	}
	var receipts pendingReceipts
	if code == 0 {
		// Hand the message over before acking it, so that once SendMessage
		// returns, the recipient has it.
		if contact != nil {
			if _, err := contact.decryptStanza(ctx, msg, from); err != nil {
				s.recordError(fmt.Errorf("contact %s could not decrypt message from device %d: %w", contact.pn.User, from, err))
			}
		} else if to.Server == types.GroupServer && !isPeer {
			s.handOverGroupMessage(ctx, msg, from)
		}
		// Our phone gets a copy of every message (the device-sent copy of a
		// 1:1 message, or the peer message itself).
		s.phone.receive(ctx, msg, from)
		s.fanOutOwnCopies(ctx, msg, from)
		// After the copies, which carry the same ID: WaitHandled waits for
		// the latest stanza with an ID.
		receipts = s.autoReceiptsFor(msg, contact)
	}
	// A rejected message is not delivered; Contact.Decrypt can still open it.
	ack := waBinary.Attrs{
		"class": "message",
		"id":    msg.Attrs["id"],
		"from":  to,
		"t":     time.Now().Unix(),
	}
	if code != 0 {
		ack["error"] = code
	}
	if err := c.send(ctx, waBinary.Node{Tag: "ack", Attrs: ack}); err != nil {
		s.log.Warn().Err(err).Msg("Failed to ack message")
	}
	receipts.send(ctx, s)
}

// fanOutOwnCopies delivers the device-sent copies in a message to our other
// companion devices, as the real server does: each gets a <message> from
// the sending device with the chat in "recipient".
func (s *Server) fanOutOwnCopies(ctx context.Context, msg *waBinary.Node, from uint16) {
	if strAttr(msg, "category") == "peer" {
		return
	}
	for _, target := range participantEncs(msg) {
		if !s.isOwnUser(target.jid) || target.jid.Device == 0 || target.jid.Device == from {
			continue
		}
		sender := s.ownPN
		if target.jid.Server == types.HiddenUserServer {
			sender = s.ownLID
		}
		sender.Device = from
		node := waBinary.Node{Tag: "message", Attrs: waBinary.Attrs{
			"id":        msg.Attrs["id"],
			"from":      sender,
			"recipient": jidAttr(msg, "to"),
			"t":         time.Now().Unix(),
			"type":      msg.Attrs["type"],
		}, Content: []waBinary.Node{{
			Tag:     "enc",
			Attrs:   waBinary.Attrs{"v": "2", "type": target.encType},
			Content: target.ciphertext,
		}}}
		if err := s.deliver(ctx, target.jid.Device, node); err != nil {
			s.log.Warn().Err(err).Uint16("device", target.jid.Device).Msg("Failed to deliver own-device copy")
		}
	}
}

// newStanzaID makes an ID for stanzas the server originates.
func newStanzaID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "wamock-" + strings.ToUpper(hex.EncodeToString(b))
}
