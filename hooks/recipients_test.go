package hooks

import (
	"math/rand/v2"
	"testing"

	"go.mau.fi/whatsmeow/types"
)

func TestIneligible(t *testing.T) {
	own := ownJIDs{PN: types.NewJID("15550000001", types.DefaultUserServer), LID: types.NewJID("900", types.HiddenUserServer)}
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
		reason := ineligible(c.jid, own)
		if (reason == "") != c.eligible {
			t.Errorf("Ineligible(%s) = %q, want eligible=%v", c.jid, reason, c.eligible)
		}
	}
}

// TestIsBotMatchesWhatsmeow holds isBot to types.JID.IsBot, the regular
// expression it replaces: its edges, and many users near them.
func TestIsBotMatchesWhatsmeow(t *testing.T) {
	users := []string{
		"", "1", "13135550000", "13135559999", "1313555000", "131355500000", "1313555000a", "a3135550000",
		"13165550000", "13165550099", "13165550100", "1316555009", "131655500999", "1316555000x", "1313555\u0660\u0661\u0662\u0663",
		"13135550000\n", "\n13135550000", "15551234567", "0",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := "0123456789a \n"
	for range 20000 {
		user := []byte([]string{"1313555", "131655500", "131", "", "1316555"}[rng.IntN(5)])
		for n := rng.IntN(7); n > 0; n-- {
			if rng.IntN(8) == 0 {
				user = append(user, alphabet[rng.IntN(len(alphabet))])
			} else {
				user = append(user, byte('0'+rng.IntN(10)))
			}
		}
		users = append(users, string(user))
	}
	bots := 0
	for _, user := range users {
		for _, server := range []string{types.DefaultUserServer, types.HiddenUserServer, types.BotServer, types.GroupServer} {
			for _, device := range []uint16{0, 1} {
				jid := types.JID{User: user, Server: server, Device: device}
				if got, want := isBot(jid), jid.IsBot(); got != want {
					t.Fatalf("isBot(%q@%s:%d) = %v, whatsmeow says %v", user, server, device, got, want)
				} else if got && server == types.DefaultUserServer {
					bots++
				}
			}
		}
	}
	if bots < 100 {
		t.Fatalf("only %d bot numbers among the cases: the test compares too few", bots)
	}
}

func FuzzIsBot(f *testing.F) {
	f.Add("13135550000", uint16(0))
	f.Add("13165550042", uint16(0))
	f.Add("1316555004", uint16(1))
	f.Fuzz(func(t *testing.T, user string, device uint16) {
		for _, server := range []string{types.DefaultUserServer, types.BotServer, types.HiddenUserServer} {
			jid := types.JID{User: user, Server: server, Device: device}
			if got, want := isBot(jid), jid.IsBot(); got != want {
				t.Fatalf("isBot(%q@%s:%d) = %v, whatsmeow says %v", user, server, device, got, want)
			}
		}
	})
}
