package hooks

import (
	"go.mau.fi/whatsmeow/types"
)

// ownJIDs is our own account, both addresses, without device parts.
type ownJIDs struct {
	PN  types.JID
	LID types.JID
}

// Is reports whether jid is our own account in either form.
func (o ownJIDs) Is(jid types.JID) bool {
	jid = jid.ToNonAD()
	return (!o.PN.IsEmpty() && jid == o.PN) || (!o.LID.IsEmpty() && jid == o.LID)
}

// mapsToOwn is the guard against a mapping that ties a contact to our own
// account: it reports whether exactly one of a and b (a PN and its LID, or a
// contact and the key its row lives under) is us. A hostile history blob can
// store such a mapping; followed, it would file someone's token under our
// own account, or ours under theirs.
func (o ownJIDs) mapsToOwn(a, b types.JID) bool { return o.Is(a) != o.Is(b) }

// psaUser is WhatsApp's official announcement account.
const psaUser = "0"

// ineligible says why jid can never carry or receive a trusted-contact token,
// or "" when it can. Tokens only exist between two people in a 1:1 chat.
func ineligible(jid types.JID, own ownJIDs) string {
	jid = jid.ToNonAD()
	if jid.Server == types.DefaultUserServer || jid.Server == types.HiddenUserServer {
		// A person, as nearly every send's recipient is: of the cases
		// below, only these can apply.
		switch {
		case isBot(jid):
			return "bot"
		case jid.User == psaUser:
			return "PSA account"
		case own.Is(jid):
			return "our own account"
		}
		return ""
	}
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
	case isBot(jid):
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

// isBot is types.JID.IsBot without its regular expression, which cost more
// than the rest of a send's decision for every phone number:
// `^1313555\d{4}$|^131655500\d{2}$` on a PN without a device, or the bot
// server. TestIsBotMatchesWhatsmeow holds it to whatsmeow's.
func isBot(jid types.JID) bool {
	if jid.Server == types.BotServer {
		return true
	}
	if jid.Server != types.DefaultUserServer || jid.Device != 0 || len(jid.User) != 11 {
		return false
	}
	user := jid.User
	switch {
	case user[:7] == "1313555":
		return allDigits(user[7:])
	case user[:9] == "131655500":
		return allDigits(user[9:])
	}
	return false
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
