package main

import (
	"context"
	"fmt"
	"strings"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
)

// parseChat reads --chat: a full JID, or a phone number in international
// format (spaces, dashes, dots, brackets and a leading + are ignored).
func parseChat(s string) (types.JID, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return types.EmptyJID, fmt.Errorf("empty chat")
	}
	if strings.Contains(s, "@") {
		jid, err := types.ParseJID(s)
		if err != nil {
			return types.EmptyJID, fmt.Errorf("parse chat JID %q: %w", s, err)
		}
		return jid.ToNonAD(), nil
	}
	digits := strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9':
			return r
		case r == '+' || r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
			return -1
		}
		return 'x' // anything else makes the number invalid below
	}, s)
	if strings.ContainsRune(digits, 'x') || len(digits) < 7 {
		return types.EmptyJID, fmt.Errorf("chat %q is neither a JID nor a phone number in international format", s)
	}
	if strings.HasPrefix(digits, "0") {
		return types.EmptyJID, fmt.Errorf("phone number %q must start with the country code, not 0", s)
	}
	return types.NewJID(digits, types.DefaultUserServer), nil
}

// learnLID makes sure whatsmeow knows the LID of a phone-number chat. The
// plugin needs it for the cstoken on a first message, and whatsmeow stores
// the mapping it gets from a usync user query. It returns the LID, or the
// empty JID when the chat has none (or is not a phone number).
func learnLID(ctx context.Context, cli *whatsmeow.Client, chat types.JID) (types.JID, error) {
	switch chat.Server {
	case types.HiddenUserServer:
		return chat, nil
	case types.DefaultUserServer:
	default:
		return types.EmptyJID, nil
	}
	if lid, err := cli.Store.LIDs.GetLIDForPN(ctx, chat); err == nil && !lid.IsEmpty() {
		return lid, nil
	}
	info, err := cli.GetUserInfo(ctx, []types.JID{chat})
	if err != nil {
		return types.EmptyJID, fmt.Errorf("look up the LID of %s: %w", chat, err)
	}
	return info[chat].LID, nil
}
