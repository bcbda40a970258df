package hooks

import (
	"bytes"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow/types"
)

func TestDecide(t *testing.T) {
	own := ownJIDs{PN: types.NewJID("15550000001", types.DefaultUserServer), LID: types.NewJID("900", types.HiddenUserServer)}
	salt := []byte("whatsapp_nct_salt_example")
	alice := types.NewJID("alice", types.HiddenUserServer)
	now := 10 * week
	on := ComputePolicy(DefaultDefaults(), nil, nil)
	tcOff := ComputePolicy(DefaultDefaults(), map[int]string{PropTCTokenOn1to1: "0"}, nil)
	nctOff := ComputePolicy(DefaultDefaults(), map[int]string{PropNCTSend: "0"}, nil)
	token := []byte("contact-token")
	cs := csToken(salt, alice)

	cases := []struct {
		name   string
		in     decisionInput
		attach Attach
		bytes  []byte
		reason string
		cause  Cause
	}{
		{"valid tctoken", decisionInput{To: alice, LID: alice, Token: token, TokenTS: now - 1, Salt: salt, Policy: on}, AttachTCToken, token, "valid tctoken", CauseValidTCToken},
		{"expired tctoken falls back to cstoken", decisionInput{To: alice, LID: alice, Token: token, TokenTS: 7*week - 1, Salt: salt, Policy: on}, AttachCSToken, cs, "expired", CauseCSTokenExpired},
		{"first contact", decisionInput{To: alice, LID: alice, Salt: salt, Policy: on}, AttachCSToken, cs, "cstoken over LID", CauseCSTokenNoTCToken},
		{"PN with known LID", decisionInput{To: types.NewJID("15551234567", types.DefaultUserServer), LID: alice, Salt: salt, Policy: on}, AttachCSToken, cs, "cstoken", CauseCSTokenNoTCToken},
		{"PN without LID", decisionInput{To: types.NewJID("15551234567", types.DefaultUserServer), Salt: salt, Policy: on}, AttachNothing, nil, "LID unknown", CauseNoLID},
		{"no salt", decisionInput{To: alice, LID: alice, Policy: on}, AttachNothing, nil, "no NCT salt", CauseNoSalt},
		{"tctoken gate off", decisionInput{To: alice, LID: alice, Token: token, TokenTS: now, Salt: salt, Policy: tcOff}, AttachCSToken, cs, "disabled by AB prop", CauseCSTokenTCTokenOff},
		{"nct gate off", decisionInput{To: alice, LID: alice, Salt: salt, Policy: nctOff}, AttachNothing, nil, "cstoken disabled", CauseCSTokenOff},
		{"group", decisionInput{To: types.NewJID("1203630", types.GroupServer), Salt: salt, Policy: on}, AttachNothing, nil, "group", CauseIneligible},
		{"own LID", decisionInput{To: own.LID, LID: own.LID, Salt: salt, Policy: on}, AttachNothing, nil, "own", CauseIneligible},
		{"bot", decisionInput{To: types.NewJID("13135550001", types.DefaultUserServer), Salt: salt, Policy: on}, AttachNothing, nil, "bot", CauseIneligible},
		{"PSA", decisionInput{To: types.NewJID("0", types.DefaultUserServer), Salt: salt, Policy: on}, AttachNothing, nil, "PSA", CauseIneligible},
		{"peer", decisionInput{To: alice, LID: alice, Peer: true, Token: token, TokenTS: now, Salt: salt, Policy: on}, AttachNothing, nil, "peer", CausePeerMessage},
	}
	for _, c := range cases {
		c.in.Own, c.in.Now = own, now
		got := decideFrom(c.in)
		if got.Attach != c.attach || !bytes.Equal(got.Token, c.bytes) || !strings.Contains(got.Reason, c.reason) || got.Cause != c.cause {
			t.Errorf("%s: got %s %x %s (%q), want %s %x %s (reason containing %q)", c.name, got.Attach, got.Token, got.Cause, got.Reason, c.attach, c.bytes, c.cause, c.reason)
		}
	}
}

func TestCauseNames(t *testing.T) {
	seen := make(map[string]Cause)
	for c := CauseUnknown; c <= CauseNoLID; c++ {
		name := c.String()
		if name == "" || (name == "unknown" && c != CauseUnknown) {
			t.Errorf("cause %d has no name", c)
		}
		if other, dup := seen[name]; dup {
			t.Errorf("causes %d and %d share the name %q", other, c, name)
		}
		seen[name] = c
	}
	if Cause(200).String() != "unknown" {
		t.Error("an out-of-range cause must read unknown")
	}
}

func BenchmarkDecide(b *testing.B) {
	alice := types.NewJID("111111111111111", types.HiddenUserServer)
	in := decisionInput{To: alice, LID: alice, Token: []byte("contact-token"), TokenTS: 10 * week, Salt: []byte("salt"),
		Policy: ComputePolicy(DefaultDefaults(), nil, nil), Now: 10*week + 5,
		Own: ownJIDs{PN: types.NewJID("15550000001", types.DefaultUserServer), LID: types.NewJID("900", types.HiddenUserServer)}}
	b.Run("tctoken", func(b *testing.B) {
		for b.Loop() {
			decideFrom(in)
		}
	})
	// Addressed by phone number, the LID known: the PN is judged eligible
	// (not a bot, not the PSA account, not us) on every send.
	in.To = types.NewJID("15551234567", types.DefaultUserServer)
	b.Run("tctoken-pn", func(b *testing.B) {
		for b.Loop() {
			decideFrom(in)
		}
	})
	in.Token = nil
	b.Run("cstoken", func(b *testing.B) {
		for b.Loop() {
			decideFrom(in)
		}
	})
}
