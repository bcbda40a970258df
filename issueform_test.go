package tctoken_test

import (
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/wamock"
)

// issuedTo lists what the server received issued to the contact, in either
// form, after the first `from` entries of its issuance log.
func (w *world) issuedTo(from int, c *wamock.Contact) []wamock.IssuedToken {
	var out []wamock.IssuedToken
	for _, tok := range w.srv.Issued()[from:] {
		if tok.JID.User == c.LID().User || tok.JID.User == c.PN().User {
			out = append(out, tok)
		}
	}
	return out
}

// sendAndFlush sends to `to` through the plugin, then to a fresh contact
// (due an issuance) and waits until that one is recorded: the issuance
// queue takes contacts in order, so whatever the first send queued has been
// issued and recorded, or found not due, by then.
func (w *world) sendAndFlush(to types.JID) {
	w.t.Helper()
	if _, err := w.plugin.SendMessage(w.ctx, to, text("hi")); err != nil {
		w.t.Fatal(err)
	}
	flush := w.srv.AddContact(wamock.ContactOptions{})
	from := len(w.srv.Issued())
	if _, err := w.plugin.SendMessage(w.ctx, flush.LID(), text("flush")); err != nil {
		w.t.Fatal(err)
	}
	eventually(w.t, "the flushing contact's issuance", func() bool { return len(w.issuedTo(from, flush)) == 1 })
	// Recorded once the reply came back, with whatever went in its batch.
	eventually(w.t, "the flushing contact's issuance recorded", func() bool { return w.senderTS(flush.LID()) > 0 })
}

// senderTS is the sender timestamp the plugin holds for jid, 0 if none.
func (w *world) senderTS(jid types.JID) int64 {
	w.t.Helper()
	e, err := w.plugin.Get(w.ctx, jid)
	if err != nil {
		w.t.Fatal(err)
	}
	if e == nil || e.SenderTimestamp.IsZero() {
		return 0
	}
	return e.SenderTimestamp.Unix()
}

// AB prop 14303 picks the form of the <token jid=…> the plugin issues to:
// the LID when on (and known), the phone number when off or when no LID is
// known. The sender row stays under the contact's key (its LID when known)
// whatever the form, so a change of the prop never issues again within the
// bucket.
func TestIssueFormFollowsProp14303(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db)
		w.srv.SetABProps(wamock.ABProps{Hash: "off", Props: map[int]string{tctoken.PropIssueToLID: "0"}})
		w.connect()
		needOwnIssuance(t, w)
		eventually(t, "prop 14303 off applied", func() bool { return !w.plugin.Policy().IssueToLID })
		alice := w.srv.AddContact(wamock.ContactOptions{})
		w.mapLIDs(alice)

		// Off: addressed by LID, issued to the phone number.
		from := len(w.srv.Issued())
		w.sendAndFlush(alice.LID())
		got := w.issuedTo(from, alice)
		if len(got) != 1 || got[0].Form != wamock.IssueFormPN || got[0].JID != alice.PN() {
			t.Fatalf("prop off: issued %+v, want one token to %s", got, alice.PN())
		}
		first := w.clock.Now().Unix()
		if ts := w.senderTS(alice.LID()); ts != first {
			t.Fatalf("sender timestamp under the LID = %d, want %d", ts, first)
		}
		if ts := w.senderTS(alice.PN()); ts != first {
			t.Fatalf("sender timestamp read by the phone number = %d, want %d", ts, first)
		}
		jids, err := w.plugin.GetAllJIDs(w.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, jid := range jids {
			if jid == alice.PN() {
				t.Fatal("the sender row was stored under the phone number the IQ used, not the contact's key")
			}
		}

		// On, same bucket: nothing is due, whatever the form.
		w.srv.SetABProps(wamock.ABProps{Hash: "on", Props: map[int]string{tctoken.PropIssueToLID: "1"}})
		w.reconnect()
		eventually(t, "prop 14303 on applied", func() bool { return w.plugin.Policy().IssueToLID })
		from = len(w.srv.Issued())
		w.sendAndFlush(alice.PN())
		if got := w.issuedTo(from, alice); len(got) != 0 {
			t.Fatalf("the prop changed within the bucket: issued again %+v", got)
		}

		// On, next bucket: issued to the LID, addressed by phone number.
		w.clock.Advance(week)
		from = len(w.srv.Issued())
		w.sendAndFlush(alice.PN())
		got = w.issuedTo(from, alice)
		if len(got) != 1 || got[0].Form != wamock.IssueFormLID || got[0].JID != alice.LID() {
			t.Fatalf("prop on: issued %+v, want one token to %s", got, alice.LID())
		}
		if ts := w.senderTS(alice.LID()); ts != w.clock.Now().Unix() {
			t.Fatalf("sender timestamp after the second bucket = %d, want %d", ts, w.clock.Now().Unix())
		}

		// On, LID unknown: the phone number.
		noLID := w.srv.AddContact(wamock.ContactOptions{NoLID: true})
		from = len(w.srv.Issued())
		w.sendAndFlush(noLID.PN())
		got = w.issuedTo(from, noLID)
		if len(got) != 1 || got[0].Form != wamock.IssueFormPN {
			t.Fatalf("no LID known: issued %+v, want one token to the phone number", got)
		}
		if w.senderTS(noLID.PN()) == 0 {
			t.Fatal("no sender timestamp recorded for the contact without a LID")
		}

		// A server that takes LIDs only refuses a phone number; nothing is
		// recorded for it.
		w.srv.RequireIssueForm(wamock.IssueFormLID)
		other := w.srv.AddContact(wamock.ContactOptions{NoLID: true})
		if _, err := w.plugin.IssueTokens(w.ctx, []types.JID{other.PN()}); err != nil {
			t.Fatal(err)
		}
		if ts := w.senderTS(other.PN()); ts != 0 {
			t.Fatalf("a refused issuance recorded sender timestamp %d", ts)
		}
	})
}

// whatsmeow 33cfac51 issues by itself, always to the LID (it sends a DM
// only once it knows one), whatever AB prop 14303 says: it reads no AB
// props, and nothing the plugin hands its store picks the form. The plugin
// records that issuance under the contact's key.
func TestNativeIssuesToLIDWhatever14303(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db)
		w.srv.SetABProps(wamock.ABProps{Hash: "off", Props: map[int]string{tctoken.PropIssueToLID: "0"}})
		w.connect()
		needNative(t, w)
		eventually(t, "prop 14303 off applied", func() bool { return !w.plugin.Policy().IssueToLID })
		alice := w.srv.AddContact(wamock.ContactOptions{})
		w.mapLIDs(alice)
		from := len(w.srv.Issued())
		if _, err := w.plugin.SendMessage(w.ctx, alice.PN(), text("hi")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "whatsmeow's issuance", func() bool { return len(w.issuedTo(from, alice)) == 1 })
		if got := w.issuedTo(from, alice); got[0].Form != wamock.IssueFormLID {
			t.Fatalf("whatsmeow issued %+v, want the LID form", got)
		}
		eventually(t, "its sender timestamp recorded", func() bool { return w.senderTS(alice.LID()) > 0 })
		w.plugin.Close()
		w.srv.WaitIdle(w.deviceNum, time.Second)
		if got := w.issuedTo(from, alice); len(got) != 1 {
			t.Fatalf("%d issuances, want whatsmeow's one", len(got))
		}
	})
}
