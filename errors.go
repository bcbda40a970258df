package tctoken

import (
	"errors"

	"github.com/tctoken/tctoken/hooks"
)

// The errors the plugin's own calls return. Each error a method of Plugin
// or Enable returns matches one of them with errors.Is, or is a *SendError
// or an *IQError for errors.As, and keeps its cause wrapped beside it (the
// driver's error, whatsmeow's error). SendMessage and SubscribePresence
// also return whatever whatsmeow returned, unchanged, as Client.SendMessage
// and Client.SubscribePresence would.
var (
	// ErrAlreadyEnabled is returned when Enable is called twice on one
	// client.
	ErrAlreadyEnabled = errors.New("tctoken: already enabled on this client")
	// ErrInvalidArgument is returned by Enable and EnableWithSQL for a nil
	// client or database, an unknown dialect, or an option that could not
	// be applied (a metrics registry that refused the collectors).
	ErrInvalidArgument = errors.New("tctoken: invalid argument")
	// ErrNotLoggedIn is returned by calls that need the account before the
	// client has paired.
	ErrNotLoggedIn = hooks.ErrNotLoggedIn
	// ErrNotBound is returned when the plugin could not load the account's
	// state from its database; the next call tries again after a while.
	ErrNotBound = hooks.ErrNotBound
	// ErrIneligible is returned by IssueTokens for a JID no token can be
	// issued to: a group, a broadcast, a newsletter, a bot, our own account.
	ErrIneligible = hooks.ErrIneligible
	// ErrDatabase wraps a failure of the plugin's database (or of
	// whatsmeow's, where the plugin reads it).
	ErrDatabase = hooks.ErrDatabase
	// ErrDisconnected is returned by IssueTokens when the connection was
	// down, or dropped before the server replied.
	ErrDisconnected = hooks.ErrDisconnected
	// ErrMalformedReply is returned by IssueTokens when the server's reply
	// to the privacy IQ did not have the expected shape.
	ErrMalformedReply = hooks.ErrMalformedReply
	// ErrNotRecorded is returned by IssueTokens when the server accepted
	// the issuance but the database could not record it (the sender
	// timestamp, or the tokens the reply carried). The contacts were
	// issued our token. It also matches ErrDatabase, or ErrLoggedOut.
	ErrNotRecorded = hooks.ErrNotRecorded
	// ErrLoggedOut is returned by IssueTokens when the account logged out
	// while the issuance was under way: its rows are being deleted, and
	// nothing is written for it any more.
	ErrLoggedOut = hooks.ErrLoggedOut
	// ErrTimelockQuery is returned by RefreshTimelock when the server gave
	// no usable answer to the timelock query.
	ErrTimelockQuery = hooks.ErrTimelockQuery
	// ErrNewChatCapQuery is returned by RefreshNewChatCap when the server
	// gave no usable answer: no reply, an error, or an unexpected shape.
	ErrNewChatCapQuery = hooks.ErrNewChatCapQuery
	// ErrNewChatCapDisabled is returned by RefreshNewChatCap when the AB
	// props do not enable the new-chat cap for the account.
	ErrNewChatCapDisabled = hooks.ErrNewChatCapDisabled
	// ErrFirstContactGuarded is returned (inside a *SendError with Guarded
	// set) by SendMessage for a first contact refused before the wire,
	// under Recovery.GuardFirstContacts, while the server said that a
	// reach-out timelock is in force or the new-chat cap is CAPPED (the
	// SendError's Diagnosis says which). Nothing was sent.
	ErrFirstContactGuarded = hooks.ErrFirstContactGuarded
)

// IQError is the server's error reply to the privacy IQ of IssueTokens,
// with its code and text.
type IQError = hooks.IQError
