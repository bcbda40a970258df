package hooks

import (
	"go.mau.fi/whatsmeow/types"
)

// Own is our own account, both addresses, without device parts.
type Own struct {
	PN  types.JID
	LID types.JID
}

// Is reports whether jid is our own account in either form.
func (o Own) Is(jid types.JID) bool {
	jid = jid.ToNonAD()
	return (!o.PN.IsEmpty() && jid == o.PN) || (!o.LID.IsEmpty() && jid == o.LID)
}

// psaUser is WhatsApp's official announcement account.
const psaUser = "0"

// Ineligible says why jid can never carry or receive a trusted-contact token,
// or "" when it can. Tokens only exist between two people in a 1:1 chat.
func Ineligible(jid types.JID, own Own) string {
	jid = jid.ToNonAD()
	switch {
	case jid.IsEmpty():
		return "empty JID"
	case jid.Server == types.GroupServer:
		return "group"
	case jid == types.StatusBroadcastJID:
		return "status broadcast"
	case jid.Server == types.BroadcastServer:
		return "broadcast list"
	case jid.Server == types.NewsletterServer:
		return "newsletter"
	case jid.IsBot():
		return "bot"
	case jid.Server != types.DefaultUserServer && jid.Server != types.HiddenUserServer:
		return "not a 1:1 chat (server " + jid.Server + ")"
	case jid.User == psaUser:
		return "PSA account"
	case own.Is(jid):
		return "our own account"
	}
	return ""
}
