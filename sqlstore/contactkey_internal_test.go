package sqlstore

import (
	"testing"

	"go.mau.fi/whatsmeow/types"
)

// TestContactKeySpelling checks that contactKey spells every form of JID as
// whatsmeow spells the JID without its device: the keys of rows written
// before it joined the parts itself must still be found.
func TestContactKeySpelling(t *testing.T) {
	for _, jid := range []types.JID{
		types.NewJID("15551230001", types.DefaultUserServer),
		types.NewJID("300000000000001", types.HiddenUserServer),
		types.NewADJID("15551230001", 0, 7),
		types.NewADJID("300000000000001", 1, 12),
		{User: "15551230001", Server: types.DefaultUserServer, Integrator: 3},
		{User: "15551230001", RawAgent: 2, Device: 5, Server: types.HiddenUserServer},
		{Server: types.DefaultUserServer},
		{User: "15551230001"},
		{},
	} {
		if got, want := contactKey(jid), jid.ToNonAD().String(); got != want {
			t.Errorf("contactKey(%#v) = %q, want %q", jid, got, want)
		}
	}
}
