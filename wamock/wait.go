package wamock

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
)

// helperState holds what the helpers of wait.go, people.go and group.go
// keep. It lives in one Server field so that those files add no more to the
// Server struct; its zero value is ready to use.
type helperState struct {
	mu sync.Mutex
	// deliveries maps a stanza ID (or, for stanzas without one, the key a
	// helper returned) to its latest delivery.
	deliveries map[string]*delivery
	// autoReceipts, subscribed and available describe how contacts behave
	// (people.go).
	autoReceipts map[*Contact][]ReceiptType
	subscribed   map[*Contact]map[uint16]bool
	available    map[*Contact]bool
	// groups (group.go).
	groups    map[string]*Group
	groupList []*Group
	nextGroup int
	// changed is closed and replaced when a delivery in flight is done.
	changed chan struct{}
}

// delivery is a stanza the server sent or queued for our devices.
type delivery struct {
	tag string
	// mark is the length of the received log when the stanza was first
	// handed over: an answer must come after it.
	mark    int
	devices map[uint16]bool
	// inflight counts stanzas noted before they are handed over (a
	// contact's automatic receipts, noted before the ack they follow):
	// WaitHandled sends its barrier only after them.
	inflight int
}

// recordLocked returns the record under key for a stanza of tag, and
// starts a new one when there is none or its tag differs: a contact's
// receipt carries the ID of our message, which the server may have
// delivered to our other devices. The caller holds h.mu.
func (h *helperState) recordLocked(key, tag string, mark int) *delivery {
	if h.deliveries == nil {
		h.deliveries = make(map[string]*delivery)
	}
	d := h.deliveries[key]
	if d == nil || d.tag != tag {
		d = &delivery{tag: tag, mark: mark, devices: make(map[uint16]bool)}
		h.deliveries[key] = d
	}
	return d
}

// noteDelivery records that node went (or was queued) to device num, so
// that WaitHandled knows whom to wait for.
func (s *Server) noteDelivery(key string, num uint16, node *waBinary.Node) {
	if key == "" {
		return
	}
	mark := s.Mark()
	h := &s.helpers
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recordLocked(key, node.Tag, mark).devices[num] = true
}

// noteNoDelivery records a key that may reach no device, so that
// WaitHandled has nothing to wait for instead of reporting an unknown ID.
func (s *Server) noteNoDelivery(key, tag string) {
	mark := s.Mark()
	h := &s.helpers
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recordLocked(key, tag, mark)
}

// expectDelivery notes a stanza that will be delivered shortly, after
// something the caller must send first; deliveryDone says it has been.
func (s *Server) expectDelivery(key, tag string) {
	mark := s.Mark()
	h := &s.helpers
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recordLocked(key, tag, mark).inflight++
}

func (s *Server) deliveryDone(key string) {
	h := &s.helpers
	h.mu.Lock()
	defer h.mu.Unlock()
	if d := h.deliveries[key]; d != nil && d.inflight > 0 {
		d.inflight--
	}
	if h.changed != nil {
		close(h.changed)
		h.changed = nil
	}
}

// waitInflight waits until no delivery under key is in flight.
func (s *Server) waitInflight(ctx context.Context, key string) error {
	h := &s.helpers
	for {
		h.mu.Lock()
		d := h.deliveries[key]
		if d == nil || d.inflight == 0 {
			h.mu.Unlock()
			return nil
		}
		if h.changed == nil {
			h.changed = make(chan struct{})
		}
		changed := h.changed
		h.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("wamock: %s is still being delivered: %w", key, ctx.Err())
		}
	}
}

func (s *Server) deliveryOf(key string) (tag string, mark int, devices []uint16, ok bool) {
	h := &s.helpers
	h.mu.Lock()
	defer h.mu.Unlock()
	d := h.deliveries[key]
	if d == nil {
		return "", 0, nil, false
	}
	for num := range d.devices {
		devices = append(devices, num)
	}
	sort.Slice(devices, func(i, j int) bool { return devices[i] < devices[j] })
	return d.tag, d.mark, devices, true
}

// barrierType is the notification type of the stanza WaitHandled sends
// after the one it waits for. whatsmeow handles the stanzas of a connection
// one at a time, in order, and acks an unknown notification as soon as it
// starts on it, so the barrier's ack proves the handler of the stanza before
// it has returned. The stanza's own ack does not: without SynchronousAck,
// whatsmeow acks notifications and receipts before handling them.
const barrierType = "wamock_barrier"

func barrierNode() waBinary.Node {
	return waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{
		"type": barrierType,
		"from": types.ServerJID,
		"id":   newStanzaID(),
		"t":    time.Now().Unix(),
	}}
}

// WaitHandled waits until every one of our devices that the stanza with this
// ID went to (or was queued for) has handled it, and returns an error that
// says what a device did instead of accepting it. Every push helper returns
// the ID to pass; for stanzas that carry none on the wire (presence, chat
// state) it returns a key of its own.
//
// "Handled" means that whatsmeow's handler for the stanza returned, and so
// the event handlers it called synchronously (events.Message,
// events.Receipt, events.Presence, …) ran. Work whatsmeow itself starts in
// the background (identity-change and app state notifications, history sync
// downloads) may still be under way. Accepted means:
//
//   - <message>: a <receipt> that is not a retry receipt (whatsmeow sends it
//     after decrypting and dispatching events.Message);
//   - <notification>, <receipt>, <call>: an <ack> without an error;
//   - anything else (presence, chat state): the handler returned.
//
// A device that is offline handles the stanza once it logs in again; until
// then WaitHandled waits, so give it a context with a deadline. WaitHandled
// sends each device a notification of its own (type "wamock_barrier", see
// Sent) to learn that the handler has returned.
func (s *Server) WaitHandled(ctx context.Context, id string) error {
	if err := s.waitInflight(ctx, id); err != nil {
		return err
	}
	tag, mark, devices, ok := s.deliveryOf(id)
	if !ok {
		return fmt.Errorf("wamock: no stanza with id %q was sent or queued", id)
	}
	barriers := make(map[uint16]string, len(devices))
	for _, num := range devices {
		barrier := barrierNode()
		if err := s.deliver(ctx, num, barrier); err != nil {
			return fmt.Errorf("wamock: wait for %s: %w", id, err)
		}
		barriers[num] = strAttr(&barrier, "id")
	}
	var errs []error
	for _, num := range devices {
		if err := s.waitHandledOn(ctx, num, id, tag, mark, barriers[num]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// WaitAllHandled waits until each of our devices that is logged in, or has
// stanzas queued, has handled everything the server sent or queued for it
// so far: for helpers that return no ID (Phone().SetNCTSalt,
// Contact.NotifyIdentityChange, PushPrivacyToken, …). It checks no answers;
// WaitHandled does, for one stanza.
func (s *Server) WaitAllHandled(ctx context.Context) error {
	online := make(map[uint16]bool)
	for _, c := range s.loggedInConns() {
		online[c.deviceNum()] = true
	}
	s.mu.Lock()
	var devices []uint16
	for _, d := range s.sortedDevicesLocked() {
		if online[d.num] || len(d.pending) > 0 {
			devices = append(devices, d.num)
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, num := range devices {
		barrier := barrierNode()
		if err := s.deliver(ctx, num, barrier); err != nil {
			return fmt.Errorf("wamock: wait for device %d: %w", num, err)
		}
		errs = append(errs, s.WaitHandled(ctx, strAttr(&barrier, "id")))
	}
	return errors.Join(errs...)
}

// waitHandledOn waits for one device's verdict on a stanza.
func (s *Server) waitHandledOn(ctx context.Context, num uint16, id, tag string, mark int, barrierID string) error {
	for {
		s.obs.mu.Lock()
		var answers []*waBinary.Node
		barrierDone := false
		for i := mark; i < len(s.obs.received); i++ {
			n := s.obs.received[i]
			if s.obs.origin[n] != num || (n.Tag != "ack" && n.Tag != "receipt") {
				continue
			}
			switch strAttr(n, "id") {
			case barrierID:
				barrierDone = barrierDone || n.Tag == "ack"
			case id:
				if isAnswerTo(n, tag) {
					answers = append(answers, n)
				}
			}
		}
		changed := s.obs.changed
		s.obs.mu.Unlock()

		done, err := verdict(tag, answers, barrierDone)
		if done {
			if err != nil {
				return fmt.Errorf("wamock: device %d did not accept <%s id=%q>: %w", num, tag, id, err)
			}
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("wamock: device %d has not handled <%s id=%q> (%s): %w", num, tag, id, s.waitState(num, answers, barrierDone), ctx.Err())
		}
	}
}

// isAnswerTo tells whether a client stanza with the right ID answers a
// stanza of the given tag. Acks name the class they answer; only messages
// are answered with receipts.
func isAnswerTo(n *waBinary.Node, tag string) bool {
	if n.Tag == "ack" {
		return strAttr(n, "class") == tag
	}
	return tag == "message"
}

// verdict decides from the answers so far whether the wait is over and
// whether the stanza was accepted.
func verdict(tag string, answers []*waBinary.Node, barrierDone bool) (bool, error) {
	if !barrierDone {
		// Even a refusal is sent before the handler is done (whatsmeow
		// sends a retry receipt, then emits events.UndecryptableMessage).
		return false, nil
	}
	for _, a := range answers {
		if code := strAttr(a, "error"); code != "" {
			return true, fmt.Errorf("it answered %s (error %s)", Describe(a), code)
		}
		if a.Tag == "receipt" && strAttr(a, "type") == "retry" {
			return true, fmt.Errorf("it asked for a retry (%s): it could not decrypt the message", Describe(a))
		}
	}
	switch tag {
	case "message":
		for _, a := range answers {
			if a.Tag == "receipt" {
				return true, nil
			}
		}
		if len(answers) > 0 {
			// whatsmeow acks a message without a receipt only when it
			// failed to decrypt or parse it.
			return true, fmt.Errorf("it answered %s without a delivery receipt: it could not decrypt or parse the message", Describe(answers[0]))
		}
		return false, nil
	case "notification", "receipt", "call":
		return len(answers) > 0, nil
	default:
		return true, nil
	}
}

// waitState describes where a wait stands, for its timeout error.
func (s *Server) waitState(num uint16, answers []*waBinary.Node, barrierDone bool) string {
	online := false
	for _, c := range s.loggedInConns() {
		if c.deviceNum() == num && c.isActive() {
			online = true
		}
	}
	var parts []string
	if !online {
		parts = append(parts, "device offline, stanza queued")
	}
	if len(answers) == 0 {
		parts = append(parts, "no answer")
	}
	for _, a := range answers {
		parts = append(parts, "answered "+Describe(a))
	}
	if !barrierDone {
		parts = append(parts, "handler not known to have returned")
	}
	return strings.Join(parts, "; ")
}

// PushAndWait is Push followed by WaitHandled. A stanza without an ID
// (a presence, say) is waited for on the devices connected when it was
// pushed.
func (s *Server) PushAndWait(ctx context.Context, node waBinary.Node) error {
	node = fillStanza(node)
	key := strAttr(&node, "id")
	if key == "" {
		key = "push-" + newStanzaID()
		s.noteNoDelivery(key, node.Tag)
		for _, c := range s.loggedInConns() {
			s.noteDelivery(key, c.deviceNum(), &node)
		}
	}
	if err := s.Push(node); err != nil {
		return err
	}
	return s.WaitHandled(ctx, key)
}

// PushToAndWait is PushTo followed by WaitHandled.
func (s *Server) PushToAndWait(ctx context.Context, device uint16, node waBinary.Node) error {
	node = fillStanza(node)
	key := strAttr(&node, "id")
	if key == "" {
		key = "push-" + newStanzaID()
		s.noteDelivery(key, device, &node)
	}
	if err := s.PushTo(device, node); err != nil {
		return err
	}
	return s.WaitHandled(ctx, key)
}

// PushPrivacyTokenAndWait is PushPrivacyToken followed by WaitHandled: when
// it returns nil, whatsmeow has stored the token (through
// Store.PrivacyTokens) on every device it went to.
func (s *Server) PushPrivacyTokenAndWait(ctx context.Context, from, senderLID, target types.JID, token []byte, t int64) error {
	return s.PushAndWait(ctx, PrivacyTokenNotification(from, senderLID, target, token, t))
}

// SendMessageAndWait is SendMessage followed by WaitHandled: when it returns
// nil, every device of ours that the message went to has decrypted it and
// run its events.Message handlers.
func (c *Contact) SendMessageAndWait(ctx context.Context, msg *waE2E.Message) (types.MessageID, error) {
	id, err := c.SendMessage(ctx, msg)
	if err != nil {
		return id, err
	}
	return id, c.s.WaitHandled(ctx, id)
}

// SendTextAndWait is SendText followed by WaitHandled.
func (c *Contact) SendTextAndWait(ctx context.Context, text string) (types.MessageID, error) {
	return c.SendMessageAndWait(ctx, &waE2E.Message{Conversation: &text})
}

// isQueued tells which stanzas the server keeps for an offline device.
func isQueued(tag string) bool {
	switch tag {
	case "message", "notification", "receipt", "call":
		return true
	}
	return false
}

// pushQueued sends a stanza to each of our known devices: at once, from
// this goroutine, to those logged in (as Push always did, even before the
// client has finished its login), queued for the others.
func (s *Server) pushQueued(node waBinary.Node) error {
	nums := s.knownDevices()
	if len(nums) == 0 {
		return ErrNotConnected
	}
	online := make(map[uint16]*conn)
	for _, c := range s.loggedInConns() {
		online[c.deviceNum()] = c
	}
	var errs []error
	for _, num := range nums {
		if c := online[num]; c != nil {
			s.noteDelivery(strAttr(&node, "id"), num, &node)
			if err := c.send(s.ctx, node); err == nil {
				continue
			}
		}
		errs = append(errs, s.deliver(s.ctx, num, node))
	}
	return errors.Join(errs...)
}
