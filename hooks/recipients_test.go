package hooks

import (
	"testing"

	"go.mau.fi/whatsmeow/types"
)

func TestIneligible(t *testing.T) {
	own := Own{PN: types.NewJID("15550000001", types.DefaultUserServer), LID: types.NewJID("900", types.HiddenUserServer)}
	cases := []struct {
		jid      types.JID
		eligible bool
	}{
		{types.NewJID("15551234567", types.DefaultUserServer), true},
		{types.NewJID("123456789", types.HiddenUserServer), true},
		{types.JID{User: "123456789", Server: types.HiddenUserServer, Device: 4}, true},
		{types.NewJID("120363000000000000", types.GroupServer), false},
		{types.StatusBroadcastJID, false},
		{types.NewJID("1234567", types.BroadcastServer), false},
		{types.NewJID("120363000000000001", types.NewsletterServer), false},
		{types.NewJID("13135550001", types.DefaultUserServer), false},
		{types.NewJID("13165550042", types.DefaultUserServer), false},
		{types.NewJID("867051314767696", types.BotServer), false},
		{types.NewJID("0", types.DefaultUserServer), false},
		{own.PN, false},
		{types.JID{User: "900", Server: types.HiddenUserServer, Device: 2}, false},
		{types.EmptyJID, false},
	}
	for _, c := range cases {
		reason := Ineligible(c.jid, own)
		if (reason == "") != c.eligible {
			t.Errorf("Ineligible(%s) = %q, want eligible=%v", c.jid, reason, c.eligible)
		}
	}
}
