package wamock

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// MessageRule decides the ack for a <message> our client sends: 0 acks it,
// any other value rejects it with <ack error="code"> (whatsmeow's
// SendMessage then returns an error wrapping ErrServerReturnedError). to is
// the recipient contact, nil when the recipient is not a known contact. Peer
// messages (to our own devices) bypass the rule.
type MessageRule func(msg *waBinary.Node, to *Contact) (errorCode int)

// ErrorCodeNoToken is what the real server answers when a message lacks a
// valid privacy token (or the account is restricted).
const ErrorCodeNoToken = 463

// SetMessageRule installs the rule for acks; nil acks everything.
func (s *Server) SetMessageRule(rule MessageRule) {
	s.mu.Lock()
	s.rule = rule
	s.mu.Unlock()
}

// RequireToken rejects messages to contacts with 463 unless they carry a
// <tctoken> or a <cstoken> child (the content is not checked).
func RequireToken() MessageRule {
	return func(msg *waBinary.Node, to *Contact) int {
		if to == nil {
			return 0
		}
		if hasChild(msg, "tctoken") || hasChild(msg, "cstoken") {
			return 0
		}
		return ErrorCodeNoToken
	}
}

// RequireCSToken rejects messages to contacts with 463 unless they carry a
// <tctoken>, or a <cstoken> equal to CSToken(salt, contact's LID).
func RequireCSToken(salt []byte) MessageRule {
	return func(msg *waBinary.Node, to *Contact) int {
		if to == nil {
			return 0
		}
		if hasChild(msg, "tctoken") {
			return 0
		}
		got := childBytes(msg, "cstoken")
		if got != nil && !to.LID().IsEmpty() && bytes.Equal(got, CSToken(salt, to.LID())) {
			return 0
		}
		return ErrorCodeNoToken
	}
}

// CSToken computes HMAC-SHA256(salt, "<lid user>@lid"), the client-side
// token that stands in for a tctoken on first contact.
func CSToken(salt []byte, lid types.JID) []byte {
	mac := hmac.New(sha256.New, salt)
	mac.Write([]byte(lid.User + "@" + types.HiddenUserServer))
	return mac.Sum(nil)
}

// MessageToken returns the <tctoken> bytes of a message stanza, or nil.
func MessageToken(msg *waBinary.Node) []byte { return childBytes(msg, "tctoken") }

// MessageCSToken returns the <cstoken> bytes of a message stanza, or nil.
func MessageCSToken(msg *waBinary.Node) []byte { return childBytes(msg, "cstoken") }
