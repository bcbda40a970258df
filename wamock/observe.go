package wamock

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// observer keeps what the clients sent, for assertions.
type observer struct {
	mu       sync.Mutex
	received []*waBinary.Node
	sent     []*waBinary.Node
	errs     []error
	consumed map[int]bool
	// origin remembers which of our devices sent each received stanza.
	origin map[*waBinary.Node]uint16
	// unanswered holds, per device, the IDs of stanzas the server sent that
	// whatsmeow answers with an ack or receipt; lastRecv is when each device
	// last sent something. WaitIdle uses both.
	unanswered map[uint16]map[string]bool
	lastRecv   map[uint16]time.Time
	// changed is closed and replaced whenever something is recorded, which
	// wakes every WaitFor.
	changed chan struct{}
}

func (o *observer) init() {
	o.consumed = make(map[int]bool)
	o.origin = make(map[*waBinary.Node]uint16)
	o.unanswered = make(map[uint16]map[string]bool)
	o.lastRecv = make(map[uint16]time.Time)
	o.changed = make(chan struct{})
}

func (o *observer) notifyLocked() {
	close(o.changed)
	o.changed = make(chan struct{})
}

func (o *observer) addReceived(node *waBinary.Node, device uint16) {
	o.mu.Lock()
	o.received = append(o.received, node)
	o.origin[node] = device
	o.lastRecv[device] = time.Now()
	if node.Tag == "ack" || node.Tag == "receipt" {
		delete(o.unanswered[device], strAttr(node, "id"))
	}
	o.notifyLocked()
	o.mu.Unlock()
}

func (o *observer) originOf(node *waBinary.Node) (uint16, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	device, ok := o.origin[node]
	return device, ok
}

// ReceivedFrom tells which of our devices sent a stanza returned by
// Received, WaitFor and friends.
func (s *Server) ReceivedFrom(node *waBinary.Node) (device uint16, ok bool) {
	return s.obs.originOf(node)
}

func (o *observer) addSent(node *waBinary.Node, device uint16) {
	o.mu.Lock()
	o.sent = append(o.sent, node)
	switch node.Tag {
	case "message", "notification", "receipt", "call":
		if id := strAttr(node, "id"); id != "" {
			if o.unanswered[device] == nil {
				o.unanswered[device] = make(map[string]bool)
			}
			o.unanswered[device][id] = true
		}
	}
	o.mu.Unlock()
}

// removeSent takes back a stanza recorded by addSent whose write failed.
func (o *observer) removeSent(node *waBinary.Node, device uint16) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := len(o.sent) - 1; i >= 0; i-- {
		if o.sent[i] == node {
			o.sent = append(o.sent[:i], o.sent[i+1:]...)
			break
		}
	}
	if id := strAttr(node, "id"); id != "" {
		delete(o.unanswered[device], id)
	}
}

// resetUnanswered forgets what a device's previous connection left
// unanswered: whatsmeow does not answer stanzas of an old connection.
func (o *observer) resetUnanswered(device uint16) {
	o.mu.Lock()
	delete(o.unanswered, device)
	o.mu.Unlock()
}

// idleQuietPeriod is how long a device must stay silent to count as idle.
const idleQuietPeriod = 60 * time.Millisecond

// WaitIdle waits until the device has answered (acked or sent a receipt
// for) every message, notification and receipt the server sent it, and then
// stayed silent briefly; false on timeout.
//
// Disconnect the client only when it is idle: whatsmeow 2025-12 has a data
// race between closing its socket and a send still in flight (for example
// the delivery receipt it sends in the background after events.Message),
// which the race detector reports. QuickClient's cleanup does this.
func (s *Server) WaitIdle(device uint16, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		s.obs.mu.Lock()
		pending := len(s.obs.unanswered[device])
		quietFor := time.Since(s.obs.lastRecv[device])
		changed := s.obs.changed
		s.obs.mu.Unlock()
		if pending == 0 && quietFor >= idleQuietPeriod {
			return true
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return false
		}
		if pending == 0 && idleQuietPeriod-quietFor < wait {
			wait = idleQuietPeriod - quietFor
		}
		select {
		case <-changed:
		case <-time.After(wait):
		}
	}
}

func (o *observer) addError(err error) {
	o.mu.Lock()
	o.errs = append(o.errs, err)
	o.notifyLocked()
	o.mu.Unlock()
}

func (o *observer) errorList() []error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]error(nil), o.errs...)
}

// Received returns every stanza the clients sent after their handshake, in
// the order the server read them, from all connections.
func (s *Server) Received() []*waBinary.Node {
	s.obs.mu.Lock()
	defer s.obs.mu.Unlock()
	return append([]*waBinary.Node(nil), s.obs.received...)
}

// Sent returns every stanza the server sent to the clients.
func (s *Server) Sent() []*waBinary.Node {
	s.obs.mu.Lock()
	defer s.obs.mu.Unlock()
	return append([]*waBinary.Node(nil), s.obs.sent...)
}

// Mark returns a position in the received log, for Since and WaitForSince.
func (s *Server) Mark() int {
	s.obs.mu.Lock()
	defer s.obs.mu.Unlock()
	return len(s.obs.received)
}

// Since returns the stanzas received after mark.
func (s *Server) Since(mark int) []*waBinary.Node {
	s.obs.mu.Lock()
	defer s.obs.mu.Unlock()
	if mark > len(s.obs.received) {
		return nil
	}
	return append([]*waBinary.Node(nil), s.obs.received[mark:]...)
}

// WaitFor waits for a received stanza that matches and returns it.
//
// It searches the whole received log from the start, skipping stanzas that
// an earlier WaitFor or WaitForSince already returned, so two waits for
// similar stanzas return two different ones, and a stanza that arrived
// before the call is found too. To ignore older traffic, take a Mark before
// the action and use WaitForSince.
//
// On timeout it fails the test with desc and a summary of what came instead.
func (s *Server) WaitFor(t testing.TB, desc string, match func(*waBinary.Node) bool, timeout time.Duration) *waBinary.Node {
	t.Helper()
	return s.WaitForSince(t, 0, desc, match, timeout)
}

// WaitForSince is WaitFor limited to stanzas received after mark.
func (s *Server) WaitForSince(t testing.TB, mark int, desc string, match func(*waBinary.Node) bool, timeout time.Duration) *waBinary.Node {
	t.Helper()
	node, ok := s.waitFor(mark, match, timeout)
	if !ok {
		t.Fatalf("wamock: timed out after %s waiting for %s; received since mark %d:\n%s",
			timeout, desc, mark, s.summary(mark))
	}
	return node
}

// TryWaitFor is WaitForSince without failing the test: ok is false on
// timeout.
func (s *Server) TryWaitFor(mark int, match func(*waBinary.Node) bool, timeout time.Duration) (node *waBinary.Node, ok bool) {
	return s.waitFor(mark, match, timeout)
}

func (s *Server) waitFor(mark int, match func(*waBinary.Node) bool, timeout time.Duration) (*waBinary.Node, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	next := mark
	for {
		s.obs.mu.Lock()
		list := s.obs.received
		changed := s.obs.changed
		for ; next < len(list); next++ {
			if !s.obs.consumed[next] && match(list[next]) {
				s.obs.consumed[next] = true
				s.obs.mu.Unlock()
				return list[next], true
			}
		}
		s.obs.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			return nil, false
		}
	}
}

// summary describes the stanzas after mark, one per line, for failure
// messages.
func (s *Server) summary(mark int) string {
	nodes := s.Since(mark)
	if len(nodes) == 0 {
		return "  (nothing)"
	}
	const maxLines = 40
	var sb strings.Builder
	if len(nodes) > maxLines {
		fmt.Fprintf(&sb, "  … %d earlier stanzas\n", len(nodes)-maxLines)
		nodes = nodes[len(nodes)-maxLines:]
	}
	for _, n := range nodes {
		sb.WriteString("  ")
		sb.WriteString(Describe(n))
		sb.WriteByte('\n')
	}
	return sb.String()
}

// Describe renders a stanza's tag, attributes and child tags on one line.
func Describe(n *waBinary.Node) string {
	var sb strings.Builder
	sb.WriteByte('<')
	sb.WriteString(n.Tag)
	for _, key := range []string{"id", "xmlns", "type", "to", "class", "error"} {
		if v, ok := n.Attrs[key]; ok {
			fmt.Fprintf(&sb, " %s=%q", key, fmt.Sprint(v))
		}
	}
	sb.WriteByte('>')
	for i, child := range n.GetChildren() {
		if i == 6 {
			sb.WriteString("<…>")
			break
		}
		sb.WriteString("<" + child.Tag + ">")
	}
	return sb.String()
}

// Matchers for WaitFor.

// IsIQ matches an <iq> with the given xmlns and type ("" matches any type).
func IsIQ(xmlns, typ string) func(*waBinary.Node) bool {
	return func(n *waBinary.Node) bool {
		return n.Tag == "iq" && strAttr(n, "xmlns") == xmlns && (typ == "" || strAttr(n, "type") == typ)
	}
}

// IsMessageTo matches a <message> addressed to jid (compared without
// device), or to the other address of the same account: given a contact's
// PN it matches a message whatsmeow sent to the contact's LID, and the other
// way round (see SameAccount). Newer whatsmeow versions send a DM for a
// phone number to the contact's LID and name the number in
// peer_recipient_pn, which counts too, so tests read the same on either
// version.
func IsMessageTo(jid types.JID) func(*waBinary.Node) bool {
	return func(n *waBinary.Node) bool {
		if n.Tag != "message" {
			return false
		}
		return SameAccount(jidAttr(n, "to"), jid) || SameAccount(jidAttr(n, "peer_recipient_pn"), jid)
	}
}

// IsTag matches any stanza with the tag.
func IsTag(tag string) func(*waBinary.Node) bool {
	return func(n *waBinary.Node) bool { return n.Tag == tag }
}

// MessagesTo returns the received <message> stanzas addressed to jid.
func (s *Server) MessagesTo(jid types.JID) []*waBinary.Node {
	return s.filter(IsMessageTo(jid))
}

// Messages returns all received <message> stanzas.
func (s *Server) Messages() []*waBinary.Node { return s.filter(IsTag("message")) }

// PrivacyIQs returns the received <iq xmlns="privacy"> stanzas.
func (s *Server) PrivacyIQs() []*waBinary.Node { return s.filter(IsIQ("privacy", "")) }

// ABPropsIQs returns the received <iq xmlns="abt"> stanzas.
func (s *Server) ABPropsIQs() []*waBinary.Node { return s.filter(IsIQ("abt", "")) }

// AppStateIQs returns the received app state sync IQs.
func (s *Server) AppStateIQs() []*waBinary.Node { return s.filter(IsIQ("w:sync:app:state", "")) }

func (s *Server) filter(match func(*waBinary.Node) bool) []*waBinary.Node {
	var out []*waBinary.Node
	for _, n := range s.Received() {
		if match(n) {
			out = append(out, n)
		}
	}
	return out
}
