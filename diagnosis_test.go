package tctoken_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	waBinary "go.mau.fi/whatsmeow/binary"
	waServerSync "go.mau.fi/whatsmeow/proto/waServerSync"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/wamock"
)

// diagnosed collects the SendDiagnosed and TimelockChanged events the
// plugin dispatches through the client's handlers, as a bridge would.
type diagnosed struct {
	mu       sync.Mutex
	sends    []*tctoken.SendDiagnosed
	timelock []*tctoken.TimelockChanged
}

func (w *world) collectDiagnoses() *diagnosed {
	d := &diagnosed{}
	w.cli.AddEventHandler(func(evt any) {
		d.mu.Lock()
		defer d.mu.Unlock()
		switch evt := evt.(type) {
		case *tctoken.SendDiagnosed:
			d.sends = append(d.sends, evt)
		case *tctoken.TimelockChanged:
			d.timelock = append(d.timelock, evt)
		}
	})
	return d
}

func (d *diagnosed) waitSend(t *testing.T, id types.MessageID) *tctoken.SendDiagnosed {
	t.Helper()
	var found *tctoken.SendDiagnosed
	eventually(t, "SendDiagnosed for "+id, func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, evt := range d.sends {
			if evt.MessageID == id {
				found = evt
				return true
			}
		}
		return false
	})
	return found
}

// send463 sends through the plugin and requires a 463 diagnosed as want,
// in the error and in the event.
func (w *world) send463(d *diagnosed, to types.JID, want tctoken.Diagnosis) *tctoken.SendError {
	w.t.Helper()
	t := w.t.(*testing.T)
	resp, err := w.plugin.SendMessage(w.ctx, to, text("hello"))
	var sendErr *tctoken.SendError
	if !errors.As(err, &sendErr) {
		t.Fatalf("send to %s: want a *tctoken.SendError, got %v", to, err)
	}
	if !errors.Is(err, whatsmeow.ErrServerReturnedError) {
		t.Fatalf("the SendError must wrap whatsmeow's error: %v", err)
	}
	if ack, ok := w.srv.AckFor(resp.ID); !ok || ack.Error != wamock.ErrorCodeNoToken {
		t.Fatalf("the server's ack for %s: %+v %v", resp.ID, ack, ok)
	}
	if sendErr.Diagnosis != want || sendErr.MessageID != resp.ID || sendErr.Contact != to {
		t.Fatalf("send to %s: diagnosis %s (id %s, contact %s), want %s", to, sendErr.Diagnosis, sendErr.MessageID, sendErr.Contact, want)
	}
	if evt := d.waitSend(t, resp.ID); evt.Diagnosis != want || evt.Contact != to {
		t.Fatalf("event for %s: %s to %s, want %s", resp.ID, evt.Diagnosis, evt.Contact, want)
	}
	return sendErr
}

// refuseAll answers 463 to every message to one contact, tokens or not.
func refuseAll(contact *wamock.Contact) wamock.MessageRule {
	return func(msg *waBinary.Node, to *wamock.Contact) int {
		if to == contact {
			return wamock.ErrorCodeNoToken
		}
		return 0
	}
}

// TestDiagnosisPerCause: each token cause of a 463 is told apart, in the
// error and in the event, each from a scenario the server plays.
func TestDiagnosisPerCause(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db, tctoken.WithRecovery(tctoken.Recovery{})).connect()
		d := w.collectDiagnoses()
		bob := w.srv.AddContact(wamock.ContactOptions{})
		w.srv.SetMessageRule(wamock.RequireToken())

		// No salt: nothing could be attached.
		w.send463(d, bob.LID(), tctoken.DiagnosisNoSalt)

		// With the salt, a cstoken goes to a first contact; a server
		// that wants a tctoken refuses it.
		w.setSaltViaAppState(testSalt)
		w.srv.SetMessageRule(wamock.RefuseFirstContacts())
		w.send463(d, bob.LID(), tctoken.DiagnosisNoToken)

		// An expired token: received five weeks ago.
		carol := w.srv.AddContact(wamock.ContactOptions{})
		old := []byte("carol-old-token")
		w.pushToken(carol.LID(), types.EmptyJID, old, w.clock.Now().Add(-5*week))
		w.waitToken(carol.LID(), old)
		w.send463(d, carol.LID(), tctoken.DiagnosisTokenExpired)

		// A valid token attached and still refused.
		alice := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(alice.LID(), "alice-token")
		w.srv.SetMessageRule(refuseAll(alice))
		sendErr := w.send463(d, alice.LID(), tctoken.DiagnosisTokenRefused)
		if sendErr.Attached != tctoken.AttachTCToken || sendErr.Cause != tctoken.CauseValidTCToken {
			t.Fatalf("attached %s (%s), want the tctoken", sendErr.Attached, sendErr.Cause)
		}
		if w.plugin.Timelock().Active {
			t.Fatal("one refused first contact is no timelock")
		}
	})
}

// TestDiagnosisGateOff: AB prop 24941 off leaves a first contact without a
// cstoken; the 463 says the gate did it.
func TestDiagnosisGateOff(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db, tctoken.WithRecovery(tctoken.Recovery{}), tctoken.WithPropOverride(tctoken.PropNCTSend, "0")).connect()
		d := w.collectDiagnoses()
		w.setSaltViaAppState(testSalt)
		w.srv.SetMessageRule(wamock.RequireToken())
		bob := w.srv.AddContact(wamock.ContactOptions{})
		w.send463(d, bob.LID(), tctoken.DiagnosisGateOff)
	})
}

// TestDiagnosisNoLID: a contact without a LID gets no cstoken. whatsmeow
// 2025-12 sends to the PN anyway and the server refuses it; the newer
// whatsmeow refuses to send without a LID before the server sees anything.
func TestDiagnosisNoLID(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db, tctoken.WithRecovery(tctoken.Recovery{})).connect()
		d := w.collectDiagnoses()
		w.setSaltViaAppState(testSalt)
		w.srv.SetMessageRule(wamock.RequireToken())
		dave := w.srv.AddContact(wamock.ContactOptions{NoLID: true})
		if w.plugin.NativeTokens() {
			_, err := w.plugin.SendMessage(w.ctx, dave.PN(), text("hello"))
			var sendErr *tctoken.SendError
			if err == nil || errors.As(err, &sendErr) {
				t.Fatalf("the newer whatsmeow fails a send without a LID itself, not with a 463: %v", err)
			}
			return
		}
		w.send463(d, dave.PN(), tctoken.DiagnosisNoLID)
	})
}

// TestTimelockFromPattern: first contacts refused while a known contact
// gets through point to a timelock; from then on the diagnosis says so,
// and nothing is reissued or resent. The pattern stands in for the
// server's word, so the timelock query fails here (the server does not
// know it).
func TestTimelockFromPattern(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db, tctoken.WithRecovery(tctoken.Recovery{Reissue: true, Resend: true, ResendWait: 100 * time.Millisecond}))
		w.srv.SetMexHandler(wamock.ReachoutTimelockQueryID, nil)
		w.connect()
		d := w.collectDiagnoses()
		w.setSaltViaAppState(testSalt)
		w.srv.SetMessageRule(wamock.RefuseFirstContacts())
		alice := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(alice.LID(), "alice-token")
		if _, err := w.plugin.SendMessage(w.ctx, alice.LID(), text("hi")); err != nil {
			t.Fatalf("a known contact gets through: %v", err)
		}
		bob := w.srv.AddContact(wamock.ContactOptions{})
		carol := w.srv.AddContact(wamock.ContactOptions{})
		// The first refused first contact is only that.
		w.send463(d, bob.LID(), tctoken.DiagnosisNoToken)
		mark := w.srv.Mark()
		sendErr := w.send463(d, carol.LID(), tctoken.DiagnosisTimelock)
		if sendErr.Recovery.Skipped != "timelock" || sendErr.Recovery.Reissued || sendErr.Recovery.Resent {
			t.Fatalf("no recovery under a timelock: %+v", sendErr.Recovery)
		}
		state := w.plugin.Timelock()
		if !state.Active || state.Source != "pattern" || !state.Ends.IsZero() {
			t.Fatalf("timelock state %+v", state)
		}
		eventually(t, "TimelockChanged", func() bool {
			d.mu.Lock()
			defer d.mu.Unlock()
			return len(d.timelock) == 1 && d.timelock[0].State.Active
		})
		w.srv.WaitIdle(w.deviceNum, time.Second)
		// The newer whatsmeow issues after every DM by itself, before the
		// ack says anything; the plugin adds none.
		limit := 0
		if w.plugin.NativeTokens() {
			limit = 1
		}
		if n := len(w.privacyIQsFor(mark, carol.LID())); n > limit {
			t.Fatalf("%d issuances to a contact refused under a timelock, want at most %d", n, limit)
		}
		explained, err := w.plugin.Explain(w.ctx, carol.LID())
		if err != nil || explained.IfRefused != tctoken.DiagnosisTimelock || !explained.Timelock.Active {
			t.Fatalf("Explain under the timelock: %+v %v", explained, err)
		}
		// A first contact that gets through lifts what the pattern inferred.
		w.srv.SetMessageRule(nil)
		dave := w.srv.AddContact(wamock.ContactOptions{})
		if _, err := w.plugin.SendMessage(w.ctx, dave.LID(), text("hi")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the pattern's timelock lifted", func() bool { return !w.plugin.Timelock().Active })
		// The state outlives a restart.
		w.restart()
		if w.plugin.Timelock().Active || w.plugin.Timelock().Source != "pattern" {
			t.Fatalf("after restart: %+v", w.plugin.Timelock())
		}
	})
}

// TestTimelockFromNotification: the server's mex notification reaches the
// plugin as the newer whatsmeow's event (read without a compile-time
// dependency on its type); whatsmeow 2025-12 drops the notification, so
// there only the pattern tells.
func TestTimelockFromNotification(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db, tctoken.WithRecovery(tctoken.DefaultRecovery())).connect()
		d := w.collectDiagnoses()
		w.setSaltViaAppState(testSalt)
		ends := time.Now().Add(48 * time.Hour).Truncate(time.Second)
		if err := w.srv.PushReachoutTimelock(w.ctx, wamock.ReachoutTimelock{Active: true, Ends: ends, EnforcementType: "REACHOUT_TIMELOCK"}); err != nil {
			t.Fatal(err)
		}
		if !w.plugin.NativeTokens() {
			// Handled, and nothing reached the handlers.
			if w.plugin.Timelock().Active {
				t.Fatal("whatsmeow 2025-12 dispatches no timelock event")
			}
			return
		}
		eventually(t, "timelock from the notification", func() bool { return w.plugin.Timelock().Active })
		state := w.plugin.Timelock()
		if state.Source != "notification" || !state.Ends.Equal(ends) || state.Enforcement != "REACHOUT_TIMELOCK" {
			t.Fatalf("timelock %+v, want ends %s", state, ends)
		}
		w.srv.SetMessageRule(wamock.RefuseFirstContacts())
		bob := w.srv.AddContact(wamock.ContactOptions{})
		mark := w.srv.Mark()
		sendErr := w.send463(d, bob.LID(), tctoken.DiagnosisTimelock)
		if !sendErr.Timelock.Ends.Equal(ends) || sendErr.Recovery.Skipped != "timelock" {
			t.Fatalf("SendError %+v", sendErr)
		}
		if n := len(w.privacyIQsFor(mark, bob.LID())); n > 1 {
			t.Fatalf("%d issuances: the plugin must add none to whatsmeow's own", n)
		}
		if err := w.srv.PushReachoutTimelock(w.ctx, wamock.ReachoutTimelock{Active: false}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "timelock lifted", func() bool { return !w.plugin.Timelock().Active })
	})
}

// messagesWithID counts the <message> stanzas the client sent with an ID.
func (w *world) messagesWithID(id types.MessageID) []*waBinary.Node {
	var out []*waBinary.Node
	for _, n := range w.srv.Received() {
		if n.Tag == "message" {
			if got, _ := n.Attrs["id"].(string); got == id {
				out = append(out, n)
			}
		}
	}
	return out
}

// TestRecoveryReissuesOncePerBucket: the default recovery reissues our
// token once per contact and bucket, however many 463s follow.
func TestRecoveryReissuesOncePerBucket(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		d := w.collectDiagnoses()
		w.srv.SetMessageRule(wamock.RequireToken())
		bob := w.srv.AddContact(wamock.ContactOptions{})
		mark := w.srv.Mark()
		first := w.send463(d, bob.LID(), tctoken.DiagnosisNoSalt)
		second := w.send463(d, bob.LID(), tctoken.DiagnosisNoSalt)
		w.srv.WaitIdle(w.deviceNum, time.Second)
		issued := len(w.privacyIQsFor(mark, bob.LID()))
		if w.plugin.NativeTokens() {
			if first.Recovery.Reissued || first.Recovery.ReissueSkipped != "whatsmeow issues by itself" {
				t.Fatalf("the newer whatsmeow issues after every DM; the plugin adds none: %+v", first.Recovery)
			}
			return
		}
		if !first.Recovery.Reissued || second.Recovery.Reissued || second.Recovery.ReissueSkipped == "" {
			t.Fatalf("reissue once: first %+v, second %+v", first.Recovery, second.Recovery)
		}
		if issued != 1 {
			t.Fatalf("%d issuances to bob, want 1", issued)
		}
		// The next sender bucket allows one more.
		w.clock.Advance(week)
		third := w.send463(d, bob.LID(), tctoken.DiagnosisNoSalt)
		if !third.Recovery.Reissued {
			t.Fatalf("a new bucket allows a new reissue: %+v", third.Recovery)
		}
	})
}

// TestRecoveryResendsOnceWhenATokenArrives: with Resend, a message refused
// for want of a token goes once more, with the same ID, when the contact's
// token arrives; a second refusal is not resent again.
func TestRecoveryResendsOnceWhenATokenArrives(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db, tctoken.WithRecovery(tctoken.Recovery{Resend: true, ResendWait: time.Minute})).connect()
		w.srv.SetMessageRule(wamock.RequireToken())
		bob := w.srv.AddContact(wamock.ContactOptions{})

		type result struct {
			resp whatsmeow.SendResponse
			err  error
		}
		send := func(token string) result {
			mark := w.srv.Mark()
			done := make(chan result, 1)
			go func() {
				resp, err := w.plugin.SendMessage(w.ctx, bob.LID(), text("hello"))
				done <- result{resp, err}
			}()
			// The token may reach the client before or after the 463: the
			// resend follows either way.
			w.srv.WaitForSince(t, mark, "the first send", wamock.IsMessageTo(bob.LID()), 10*time.Second)
			w.pushToken(bob.LID(), types.EmptyJID, []byte(token), w.clock.Now())
			return <-done
		}
		got := send("bob-token")
		if got.err != nil {
			t.Fatalf("the resend with bob's token must get through: %v", got.err)
		}
		sent := w.messagesWithID(got.resp.ID)
		if len(sent) != 2 || wamock.MessageToken(sent[0]) != nil || string(wamock.MessageToken(sent[1])) != "bob-token" {
			t.Fatalf("want the refused message and one resend with the token under one ID, got %d", len(sent))
		}

		// A server that refuses whatever comes gets one resend, no more.
		w.srv.SetMessageRule(refuseAll(bob))
		got = send("bob-token-2")
		var sendErr *tctoken.SendError
		if !errors.As(got.err, &sendErr) || !sendErr.Recovery.Resent || sendErr.Recovery.ResendAccepted {
			t.Fatalf("want a SendError after the one resend, got %v", got.err)
		}
		if n := len(w.messagesWithID(got.resp.ID)); n != 2 {
			t.Fatalf("%d sends of one message, want 2", n)
		}
	})
}

// TestRecoveryBackfillsTheSaltAndResends: a message refused for want of the
// salt sets off the backfill, which finds the salt the phone has had all
// along; the message then goes once more, with the same ID and a cstoken,
// and gets through. The contact's presence was subscribed to as well.
func TestRecoveryBackfillsTheSaltAndResends(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db, tctoken.WithRecovery(tctoken.Recovery{
			SubscribePresence: true, BackfillSalt: true, Resend: true, ResendWait: time.Minute,
		})).connect()
		d := w.collectDiagnoses()
		w.shareKeysAndSync()
		if err := w.srv.Phone().AppendAppStatePatch(appstate.WAPatchRegularHigh, wamock.AppStateMutation{
			Operation: waServerSync.SyncdMutation_SET, Index: []string{wamock.NctSaltIndex},
			Value: wamock.NctSaltValue(testSalt), Version: 1,
		}); err != nil {
			t.Fatal(err)
		}
		w.srv.SetMessageRule(wamock.RequireCSToken(testSalt))
		bob := w.srv.AddContact(wamock.ContactOptions{})
		mark := w.srv.Mark()
		resp, err := w.plugin.SendMessage(w.ctx, bob.LID(), text("hello"))
		if err != nil {
			t.Fatalf("the resend after the backfill must get through: %v", err)
		}
		sent := w.messagesWithID(resp.ID)
		if len(sent) != 2 || wamock.MessageCSToken(sent[0]) != nil || len(wamock.MessageCSToken(sent[1])) != 32 {
			t.Fatalf("want the refused message without a token and one resend with a cstoken, got %d", len(sent))
		}
		evt := d.waitSend(t, resp.ID)
		if evt.Diagnosis != tctoken.DiagnosisNoSalt || !evt.Recovery.BackfillTried || !evt.Recovery.Subscribed ||
			!evt.Recovery.Resent || !evt.Recovery.ResendAccepted {
			t.Fatalf("event %+v", evt)
		}
		if len(filter(w.srv.Since(mark), func(n *waBinary.Node) bool {
			to, _ := n.Attrs["to"].(types.JID)
			return n.Tag == "presence" && n.Attrs["type"] == "subscribe" && to.User == bob.LID().User
		})) != 1 {
			t.Fatal("one presence subscription to bob")
		}
	})
}
