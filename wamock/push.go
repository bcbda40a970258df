package wamock

import (
	"context"
	"errors"
	"fmt"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// ErrNotConnected is returned by Push when no client is logged in.
var ErrNotConnected = errors.New("wamock: no client is connected")

// fillStanza gives server-originated messages and notifications the id and
// t attributes whatsmeow requires, unless the caller set them.
func fillStanza(node waBinary.Node) waBinary.Node {
	if node.Tag != "message" && node.Tag != "notification" && node.Tag != "receipt" && node.Tag != "call" {
		return node
	}
	attrs := waBinary.Attrs{}
	for k, v := range node.Attrs {
		attrs[k] = v
	}
	if _, ok := attrs["id"]; !ok {
		attrs["id"] = newStanzaID()
	}
	if _, ok := attrs["t"]; !ok && node.Tag != "receipt" {
		attrs["t"] = time.Now().Unix()
	}
	node.Attrs = attrs
	return node
}

// Push sends a stanza to every logged-in client. <message>, <notification>,
// <receipt> and <call> stanzas get an id (and t) when they lack one, and,
// as the real server keeps them, wait in a queue for each of our devices
// that is offline (see PushTo); ErrNotConnected then means no device of
// ours is known at all. Other stanzas (presence, stream errors…) only reach
// the clients connected now.
func (s *Server) Push(node waBinary.Node) error {
	node = fillStanza(node)
	if isQueued(node.Tag) {
		return s.pushQueued(node)
	}
	conns := s.loggedInConns()
	if len(conns) == 0 {
		return ErrNotConnected
	}
	var errs []error
	for _, c := range conns {
		if err := c.send(s.ctx, node); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// PushTo sends a stanza to one of our devices, queueing it until the device
// logs in if it is offline.
func (s *Server) PushTo(device uint16, node waBinary.Node) error {
	return s.deliver(s.ctx, device, fillStanza(node))
}

// deliverAll sends a stanza to all our known devices, queueing for the
// offline ones.
func (s *Server) deliverAll(ctx context.Context, node waBinary.Node) error {
	node = fillStanza(node)
	s.mu.Lock()
	var nums []uint16
	for _, d := range s.sortedDevicesLocked() {
		nums = append(nums, d.num)
	}
	s.mu.Unlock()
	var errs []error
	for _, num := range nums {
		if err := s.deliver(ctx, num, node); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// PrivacyTokenNotification builds the notification by which a contact's
// token reaches us:
//
//	<notification type="privacy_token" from=from [sender_lid=senderLID]>
//	  <tokens><token jid=target t=t type="trusted_contact">token</token></tokens>
//	</notification>
func PrivacyTokenNotification(from, senderLID, target types.JID, token []byte, t int64) waBinary.Node {
	attrs := waBinary.Attrs{
		"from": from,
		"type": "privacy_token",
		"id":   newStanzaID(),
		"t":    time.Now().Unix(),
	}
	if !senderLID.IsEmpty() {
		attrs["sender_lid"] = senderLID
	}
	return waBinary.Node{Tag: "notification", Attrs: attrs, Content: []waBinary.Node{{
		Tag: "tokens",
		Content: []waBinary.Node{{
			Tag:     "token",
			Attrs:   waBinary.Attrs{"jid": target, "t": t, "type": "trusted_contact"},
			Content: token,
		}},
	}}}
}

// PushPrivacyToken pushes a privacy_token notification (see
// PrivacyTokenNotification) to every logged-in client. senderLID may be
// empty.
func (s *Server) PushPrivacyToken(from, senderLID, target types.JID, token []byte, t int64) error {
	if err := s.Push(PrivacyTokenNotification(from, senderLID, target, token, t)); err != nil {
		return fmt.Errorf("push privacy token: %w", err)
	}
	return nil
}
