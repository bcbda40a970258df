package tctoken_test

import (
	"testing"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/wamock"
)

// TestDecisionCauses: the machine-readable cause agrees with what goes on
// the wire, through the public API, and is logged beside the reason.
func TestDecisionCauses(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		bob := w.srv.AddContact(wamock.ContactOptions{})
		unknown := types.NewJID("15559990000", types.DefaultUserServer)
		if d := w.plugin.Decide(w.ctx, bob.LID()); d.Cause != tctoken.CauseNoSalt || d.Attach != tctoken.AttachNothing {
			t.Errorf("no salt: %s %s", d.Attach, d.Cause)
		}
		w.setSaltViaAppState(testSalt)
		w.receiveToken(alice.LID(), "alice-token")
		cases := []struct {
			to     types.JID
			cause  tctoken.Cause
			attach tctoken.Attach
		}{
			{alice.LID(), tctoken.CauseValidTCToken, tctoken.AttachTCToken},
			{bob.LID(), tctoken.CauseCSTokenNoTCToken, tctoken.AttachCSToken},
			{unknown, tctoken.CauseNoLID, tctoken.AttachNothing},
			{types.NewJID("120363000000000000", types.GroupServer), tctoken.CauseIneligible, tctoken.AttachNothing},
		}
		for _, c := range cases {
			if d := w.plugin.Decide(w.ctx, c.to); d.Cause != c.cause || d.Attach != c.attach {
				t.Errorf("%s: %s %s, want %s %s", c.to, d.Attach, d.Cause, c.attach, c.cause)
			}
		}
		msg, err := w.sendAndCapture(bob.LID())
		if err != nil || len(childBytes(msg, "cstoken")) != 32 {
			t.Fatalf("the cstoken decision must put a cstoken on the wire: %v", err)
		}
		w.waitLog(1, `"cause":"cstoken_no_tctoken"`)
		own := []waBinary.Node{{Tag: "tctoken", Content: []byte("caller's")}}
		if _, err = w.sendAndCapture(bob.LID(), whatsmeow.SendRequestExtra{AdditionalNodes: &own}); err != nil {
			t.Fatal(err)
		}
		w.waitLog(1, `"cause":"caller_token"`)
	})
}
