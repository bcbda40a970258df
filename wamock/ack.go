package wamock

import (
	"strconv"
	"sync"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// Ack is the server's answer to a <message> our client sent.
type Ack struct {
	// ID is the message ID.
	ID string
	// Error is the error code the server rejected the message with
	// (ErrorCodeNoToken, say), or 0 when it accepted it.
	Error int
	// Node is the <ack> stanza itself.
	Node *waBinary.Node
}

// Accepted tells whether the server accepted the message.
func (a Ack) Accepted() bool { return a.Error == 0 }

// AckFor returns the server's ack for the message our client sent with this
// ID (resp.ID of whatsmeow's SendMessage, which is set even when SendMessage
// returns the server's error). ok is false when the server has not acked
// such a message. whatsmeow's SendMessage returns only after the ack has
// arrived, so once it has returned, AckFor finds it.
func (s *Server) AckFor(id types.MessageID) (ack Ack, ok bool) {
	for _, n := range s.Sent() {
		if n.Tag != "ack" || strAttr(n, "class") != "message" || strAttr(n, "id") != id {
			continue
		}
		ack = Ack{ID: id, Node: n}
		if code := strAttr(n, "error"); code != "" {
			ack.Error, _ = strconv.Atoi(code)
		}
		return ack, true
	}
	return Ack{}, false
}

// MessageByID returns the <message> our client sent with this ID (the first
// one, if it sent it more than once), or nil.
func (s *Server) MessageByID(id types.MessageID) *waBinary.Node {
	for _, n := range s.Received() {
		if n.Tag == "message" && strAttr(n, "id") == id {
			return n
		}
	}
	return nil
}

// addressBook pairs the PN and LID of every account a Server in this
// process plays (our own and the contacts'), so that a matcher given either
// address recognises a stanza addressed to the other. Matchers such as
// IsMessageTo are plain functions with no server at hand, hence one book
// for the process. Two servers that gave one phone number two different
// LIDs make both LIDs match that number.
var addressBook struct {
	sync.Mutex
	twins map[string]map[string]bool
}

func addressKey(jid types.JID) string {
	switch jid.Server {
	case types.DefaultUserServer, types.HostedServer:
		return "pn:" + jid.User
	case types.HiddenUserServer, types.HostedLIDServer:
		return "lid:" + jid.User
	}
	return jid.Server + ":" + jid.User
}

// registerAddresses records that pn and lid name the same account.
func registerAddresses(pn, lid types.JID) {
	if pn.IsEmpty() || lid.IsEmpty() {
		return
	}
	a, b := addressKey(pn), addressKey(lid)
	addressBook.Lock()
	defer addressBook.Unlock()
	if addressBook.twins == nil {
		addressBook.twins = make(map[string]map[string]bool)
	}
	for _, pair := range [][2]string{{a, b}, {b, a}} {
		if addressBook.twins[pair[0]] == nil {
			addressBook.twins[pair[0]] = make(map[string]bool)
		}
		addressBook.twins[pair[0]][pair[1]] = true
	}
}

// SameAccount tells whether two JIDs name the same account, ignoring the
// device: the same user, or the PN and the LID of one account a Server in
// this process plays.
func SameAccount(a, b types.JID) bool {
	if a.IsEmpty() || b.IsEmpty() {
		return false
	}
	ka, kb := addressKey(a), addressKey(b)
	if ka == kb {
		return true
	}
	addressBook.Lock()
	defer addressBook.Unlock()
	return addressBook.twins[ka][kb]
}
