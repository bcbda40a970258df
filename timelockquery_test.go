package tctoken_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/wamock"
)

// timelockQueries is how many timelock queries reached the server.
func (w *world) timelockQueries() int {
	return len(w.srv.MexQueries(wamock.ReachoutTimelockQueryID))
}

// waitTimelockFromQuery waits until the plugin recorded the server's
// answer to the timelock query, and returns it.
func (w *world) waitTimelockFromQuery(active bool) tctoken.TimelockState {
	w.t.Helper()
	eventually(w.t, "the timelock from the query", func() bool {
		state := w.plugin.Timelock()
		return state.Source == tctoken.TimelockFromQuery && state.Active == active
	})
	return w.plugin.Timelock()
}

func (d *diagnosed) timelockEvents() []tctoken.TimelockState {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []tctoken.TimelockState
	for _, evt := range d.timelock {
		out = append(out, evt.State)
	}
	return out
}

// TestTimelockQueryAtConnect: the plugin asks for the timelock when it
// connects, without variables; the answer becomes Plugin.Timelock() with
// the source "query", the enforcement type as the server spelled it (one
// no library lists), one TimelockChanged event, and what Explain says.
func TestTimelockQueryAtConnect(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db)
		ends := w.clock.Now().Add(48 * time.Hour).Truncate(time.Second)
		w.srv.SetReachoutTimelock(wamock.ReachoutTimelock{Active: true, Ends: ends, EnforcementType: "RESTRICT_ALL_COMPANIONS"})
		d := w.collectDiagnoses()
		w.connect()
		state := w.waitTimelockFromQuery(true)
		if !state.Ends.Equal(ends) || state.Enforcement != "RESTRICT_ALL_COMPANIONS" || !state.InForce(w.clock.Now()) {
			t.Fatalf("timelock %+v, want active until %s, RESTRICT_ALL_COMPANIONS", state, ends)
		}
		queries := w.srv.MexQueries(wamock.ReachoutTimelockQueryID)
		if len(queries) != 1 || string(queries[0].Variables) != "{}" {
			t.Fatalf("queries %+v, want one, with no variables", queries)
		}
		eventually(t, "TimelockChanged", func() bool { return len(d.timelockEvents()) == 1 })
		if evt := d.timelockEvents()[0]; !evt.Active || evt.Source != tctoken.TimelockFromQuery || !evt.Ends.Equal(ends) {
			t.Fatalf("event %+v", evt)
		}
		bob := w.srv.AddContact(wamock.ContactOptions{})
		explained, err := w.plugin.Explain(w.ctx, bob.LID())
		if err != nil || explained.Timelock.Source != tctoken.TimelockFromQuery || explained.IfRefused != tctoken.DiagnosisTimelock {
			t.Fatalf("Explain: %+v %v", explained, err)
		}
	})
}

// TestTimelockQueryBound: a reconnect and a restart within the hour ask
// nothing (the restart restores the recorded answer at once); once the
// hour has passed the connection asks again, and an inactive answer lifts
// the lock, with one event; the same answer an hour later dispatches none.
func TestTimelockQueryBound(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db)
		ends := w.clock.Now().Add(48 * time.Hour).Truncate(time.Second)
		w.srv.SetReachoutTimelock(wamock.ReachoutTimelock{Active: true, Ends: ends, EnforcementType: "DEFAULT"})
		w.connect()
		w.waitTimelockFromQuery(true)

		w.clock.Advance(30 * time.Minute)
		w.reconnect()
		w.waitLog(1, "Skipped the reach-out timelock query")
		if n := w.timelockQueries(); n != 1 {
			t.Fatalf("%d queries after a reconnect within the hour, want 1", n)
		}

		w.reloadDevice()
		w.start()
		if state := w.plugin.Timelock(); !state.Active || state.Source != tctoken.TimelockFromQuery || !state.Ends.Equal(ends) || state.Enforcement != "DEFAULT" {
			t.Fatalf("after a restart, before connecting: %+v", state)
		}
		d := w.collectDiagnoses()
		w.connect()
		w.waitLog(2, "Skipped the reach-out timelock query")
		if n := w.timelockQueries(); n != 1 {
			t.Fatalf("%d queries after a restart within the hour, want 1", n)
		}

		// The server lifts the lock; past the hour the connection's
		// schedule asks again.
		w.srv.SetReachoutTimelock(wamock.ReachoutTimelock{})
		w.clock.Advance(31 * time.Minute)
		w.waitTimelockFromQuery(false)
		if n := w.timelockQueries(); n != 2 {
			t.Fatalf("%d queries once the hour passed, want 2", n)
		}
		eventually(t, "TimelockChanged (lifted)", func() bool { return len(d.timelockEvents()) == 1 })
		if evt := d.timelockEvents()[0]; evt.Active || evt.Source != tctoken.TimelockFromQuery {
			t.Fatalf("event %+v", evt)
		}
		// The same answer again changes nothing: no event.
		w.clock.Advance(time.Hour + time.Second)
		eventually(t, "the third query", func() bool { return w.timelockQueries() == 3 })
		w.waitLog(1, "Reach-out timelock confirmed")
		if n := len(d.timelockEvents()); n != 1 {
			t.Fatalf("%d events, want 1: an unchanged answer dispatches none", n)
		}
	})
}

// TestTimelockQueryDefaultEnd: an active lock without an end ends a minute
// after the answer; a lock without an enforcement type keeps none.
func TestTimelockQueryDefaultEnd(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db)
		w.srv.SetReachoutTimelock(wamock.ReachoutTimelock{Active: true})
		asked := w.clock.Now()
		w.connect()
		state := w.waitTimelockFromQuery(true)
		if want := asked.Add(60 * time.Second); !state.Ends.Equal(want) || state.Enforcement != "" {
			t.Fatalf("timelock %+v, want the end %s and no enforcement type", state, want)
		}
		w.clock.Advance(61 * time.Second)
		if w.plugin.Timelock().InForce(w.clock.Now()) {
			t.Fatal("the default end passed; the lock is no longer in force")
		}
	})
}

// TestTimelockQueryFailures: an IQ error, a GraphQL error and an answer
// the plugin cannot read each log one line saying so; the connect and the
// sends go on (the guard, on here, has nothing to go by), and the pattern
// of refused first contacts stands in, without arming the guard.
func TestTimelockQueryFailures(t *testing.T) {
	cases := []struct {
		name    string
		handler wamock.MexHandler
		logged  string
	}{
		{"iq_error", nil, "the server refused the IQ"},
		{"graphql_error", func(json.RawMessage) (any, error) {
			return nil, &wamock.MexError{Code: 500, Message: "internal"}
		}, "GraphQL error"},
		{"malformed", func(json.RawMessage) (any, error) {
			return map[string]any{"xwa2_fetch_account_reachout_timelock": map[string]any{"is_active": "yes"}}, nil
		}, "malformed reach-out timelock answer"},
		{"no_is_active", func(json.RawMessage) (any, error) {
			return map[string]any{"xwa2_fetch_account_reachout_timelock": map[string]any{"enforcement_type": "DEFAULT"}}, nil
		}, "no is_active"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachDB(t, func(t *testing.T, db *dbutil.Database) {
				w := newWorld(t, db, tctoken.WithRecovery(tctoken.Recovery{GuardFirstContacts: true}))
				w.srv.SetMexHandler(wamock.ReachoutTimelockQueryID, tc.handler)
				w.connect()
				w.waitLog(1, "Failed to query the reach-out timelock", tc.logged)
				if n := w.logLines("Failed to query the reach-out timelock"); n != 1 {
					t.Fatalf("%d lines about the failed query, want 1", n)
				}
				if state := w.plugin.Timelock(); state.Source == tctoken.TimelockFromQuery || state.Active {
					t.Fatalf("a failed query recorded %+v", state)
				}
				d := w.collectDiagnoses()
				w.setSaltViaAppState(testSalt)
				w.srv.SetMessageRule(wamock.RefuseFirstContacts())
				alice := w.srv.AddContact(wamock.ContactOptions{})
				w.receiveToken(alice.LID(), "alice-token")
				if _, err := w.plugin.SendMessage(w.ctx, alice.LID(), text("hi")); err != nil {
					t.Fatalf("a send after a failed query: %v", err)
				}
				w.send463(d, w.srv.AddContact(wamock.ContactOptions{}).LID(), tctoken.DiagnosisNoToken)
				w.send463(d, w.srv.AddContact(wamock.ContactOptions{}).LID(), tctoken.DiagnosisTimelock)
				if state := w.plugin.Timelock(); !state.Active || state.Source != tctoken.TimelockFromPattern {
					t.Fatalf("the pattern stands in for the failed query: %+v", state)
				}
				// The pattern's lock does not arm the guard: the next first
				// contact goes on the wire, and its 463 is diagnosed.
				if sendErr := w.send463(d, w.srv.AddContact(wamock.ContactOptions{}).LID(), tctoken.DiagnosisTimelock); sendErr.Guarded {
					t.Fatalf("guarded under the pattern's lock: %+v", sendErr)
				}
			})
		})
	}
}

// TestTimelockPatternAsksTheServer: when the server said at connect that
// no lock applies, refused first contacts do not make the plugin guess:
// they make it ask again, and the server's answer decides.
func TestTimelockPatternAsksTheServer(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db, tctoken.WithRecovery(tctoken.Recovery{}))
		w.connect()
		w.waitTimelockFromQuery(false)
		d := w.collectDiagnoses()
		w.setSaltViaAppState(testSalt)
		alice := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(alice.LID(), "alice-token")
		if _, err := w.plugin.SendMessage(w.ctx, alice.LID(), text("hi")); err != nil {
			t.Fatal(err)
		}
		// The lock begins during the connection; whatsmeow 2025-12 hears
		// no notification of it.
		ends := w.clock.Now().Add(6 * 24 * time.Hour).Truncate(time.Second)
		w.srv.SetReachoutTimelock(wamock.ReachoutTimelock{Active: true, Ends: ends, EnforcementType: "DEFAULT"})
		w.srv.SetMessageRule(wamock.RefuseFirstContacts())
		w.clock.Advance(2 * time.Minute)
		w.send463(d, w.srv.AddContact(wamock.ContactOptions{}).LID(), tctoken.DiagnosisNoToken)
		// The second makes the pattern: the plugin asks in the background,
		// and this refusal is diagnosed with whatever is known when it is
		// (the answer may already be in).
		_, err := w.plugin.SendMessage(w.ctx, w.srv.AddContact(wamock.ContactOptions{}).LID(), text("hello"))
		var sendErr *tctoken.SendError
		if !errors.As(err, &sendErr) || (sendErr.Diagnosis != tctoken.DiagnosisNoToken && sendErr.Diagnosis != tctoken.DiagnosisTimelock) {
			t.Fatalf("the second refused first contact: %v", err)
		}
		if sendErr.Diagnosis == tctoken.DiagnosisTimelock && sendErr.Timelock.Source != tctoken.TimelockFromQuery {
			t.Fatalf("the pattern overruled the server's word: %+v", sendErr.Timelock)
		}
		state := w.waitTimelockFromQuery(true)
		if !state.Ends.Equal(ends) {
			t.Fatalf("timelock %+v, want the server's end %s", state, ends)
		}
		if n := w.timelockQueries(); n != 2 {
			t.Fatalf("%d queries, want the connect's and the pattern's", n)
		}
		w.send463(d, w.srv.AddContact(wamock.ContactOptions{}).LID(), tctoken.DiagnosisTimelock)
	})
}

// messagesSince counts the messages the client sent from a mark on.
func (w *world) messagesSince(mark int) int {
	n := 0
	for _, node := range w.srv.Received()[mark:] {
		if node.Tag == "message" {
			n++
		}
	}
	return n
}

// TestFirstContactGuard: with GuardFirstContacts, a first contact under a
// known timelock is refused with a typed error before anything reaches
// the server; a contact with a valid tctoken still gets through; once the
// lock ends, first contacts go again.
func TestFirstContactGuard(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db, tctoken.WithRecovery(tctoken.Recovery{GuardFirstContacts: true}))
		ends := w.clock.Now().Add(48 * time.Hour).Truncate(time.Second)
		w.srv.SetReachoutTimelock(wamock.ReachoutTimelock{Active: true, Ends: ends, EnforcementType: "DEFAULT"})
		w.connect()
		w.waitTimelockFromQuery(true)
		w.setSaltViaAppState(testSalt)
		alice := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(alice.LID(), "alice-token")
		bob := w.srv.AddContact(wamock.ContactOptions{})
		w.srv.WaitIdle(w.deviceNum, time.Second)

		mark := w.srv.Mark()
		for _, to := range []string{"lid", "pn"} {
			jid := bob.LID()
			if to == "pn" {
				jid = bob.PN()
			}
			_, err := w.plugin.SendMessage(w.ctx, jid, text("hello"))
			var sendErr *tctoken.SendError
			if !errors.Is(err, tctoken.ErrFirstContactGuarded) || !errors.As(err, &sendErr) {
				t.Fatalf("first contact by %s under the lock: %v, want a SendError matching ErrFirstContactGuarded", to, err)
			}
			if !sendErr.Guarded || sendErr.Diagnosis != tctoken.DiagnosisTimelock || sendErr.Timelock.Source != tctoken.TimelockFromQuery ||
				!sendErr.Timelock.Ends.Equal(ends) || sendErr.Contact != jid || errors.Is(err, whatsmeow.ErrServerReturnedError) {
				t.Fatalf("guarded SendError by %s: %+v (%v)", to, sendErr, err)
			}
		}
		w.srv.WaitIdle(w.deviceNum, time.Second)
		if n := w.messagesSince(mark); n != 0 {
			t.Fatalf("%d messages reached the server, want none", n)
		}

		resp, err := w.plugin.SendMessage(w.ctx, alice.LID(), text("hi"))
		if err != nil {
			t.Fatalf("a contact with a valid tctoken under the lock: %v", err)
		}
		if ack, ok := w.srv.AckFor(resp.ID); !ok || ack.Error != 0 {
			t.Fatalf("the server's ack for alice: %+v %v", ack, ok)
		}

		// The lock's end passes: first contacts go again.
		w.clock.Advance(49 * time.Hour)
		resp, err = w.plugin.SendMessage(w.ctx, bob.LID(), text("hello"))
		if err != nil {
			t.Fatalf("a first contact after the lock ended: %v", err)
		}
		if ack, ok := w.srv.AckFor(resp.ID); !ok || ack.Error != 0 {
			t.Fatalf("the server's ack for bob: %+v %v", ack, ok)
		}
	})
}

// TestFirstContactGuardOffByDefault: without the guard a first contact
// under a known timelock goes on the wire, and its 463 is diagnosed.
func TestFirstContactGuardOffByDefault(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db)
		w.srv.SetReachoutTimelock(wamock.ReachoutTimelock{Active: true, Ends: w.clock.Now().Add(48 * time.Hour)})
		w.connect()
		w.waitTimelockFromQuery(true)
		d := w.collectDiagnoses()
		w.setSaltViaAppState(testSalt)
		w.srv.SetMessageRule(wamock.RefuseFirstContacts())
		sendErr := w.send463(d, w.srv.AddContact(wamock.ContactOptions{}).LID(), tctoken.DiagnosisTimelock)
		if sendErr.Guarded || sendErr.Recovery.Skipped != "timelock" {
			t.Fatalf("SendError %+v: sent, then diagnosed", sendErr)
		}
	})
}

// TestFirstContactGuardNewChatCap: with GuardFirstContacts, a first
// contact while the server says the new-chat cap is CAPPED is refused
// before the wire with the diagnosis new_chat_cap, while a contact with a
// valid tctoken still gets through. The guard follows the AB props: once
// they stop enabling the cap, the stored CAPPED state keeps nothing back;
// and once the cycle ends, neither does the cap.
func TestFirstContactGuardNewChatCap(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db, tctoken.WithRecovery(tctoken.Recovery{GuardFirstContacts: true}))
		cycleEnd := w.clock.Now().Add(48 * time.Hour).Truncate(time.Second)
		w.srv.SetABProps(capProps("3600"))
		w.srv.SetNewChatCap(wamock.NewChatCap{Status: "CAPPED", Total: wamock.Quota(20), Used: wamock.Quota(20),
			CycleStart: w.clock.Now().Add(-24 * time.Hour), CycleEnd: cycleEnd, ServerSent: w.clock.Now()})
		w.connect()
		w.waitCapStatus(tctoken.CapCapped)
		w.setSaltViaAppState(testSalt)
		alice := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(alice.LID(), "alice-token")
		bob := w.srv.AddContact(wamock.ContactOptions{})
		w.srv.WaitIdle(w.deviceNum, time.Second)

		mark := w.srv.Mark()
		_, err := w.plugin.SendMessage(w.ctx, bob.PN(), text("hello"))
		var sendErr *tctoken.SendError
		if !errors.Is(err, tctoken.ErrFirstContactGuarded) || !errors.As(err, &sendErr) {
			t.Fatalf("first contact while capped: %v, want a SendError matching ErrFirstContactGuarded", err)
		}
		if !sendErr.Guarded || sendErr.Diagnosis != tctoken.DiagnosisNewChatCap || sendErr.NewChatCap.Status != tctoken.CapCapped ||
			!sendErr.NewChatCap.CycleEnd.Equal(cycleEnd) || sendErr.Recovery.Skipped != "guarded" {
			t.Fatalf("guarded SendError: %+v (%v)", sendErr, err)
		}
		w.srv.WaitIdle(w.deviceNum, time.Second)
		if n := w.messagesSince(mark); n != 0 {
			t.Fatalf("%d messages reached the server, want none", n)
		}
		if resp, err := w.plugin.SendMessage(w.ctx, alice.LID(), text("hi")); err != nil {
			t.Fatalf("a contact with a valid tctoken while capped: %v", err)
		} else if ack, ok := w.srv.AckFor(resp.ID); !ok || ack.Error != 0 {
			t.Fatalf("the server's ack for alice: %+v %v", ack, ok)
		}

		// The props stop enabling the cap: the CAPPED state stays stored,
		// and keeps nothing back.
		w.srv.SetABProps(wamock.ABProps{Hash: "cap-off", Refresh: 3600, Props: map[int]string{tctoken.PropNewChatCapEnabled: "0"}})
		w.reconnect()
		eventually(t, "the props turning the cap off", func() bool { return !w.plugin.Policy().NewChatCap.Enabled })
		if !w.plugin.NewChatCap().Capped() {
			t.Fatalf("the stored state %+v, want still CAPPED", w.plugin.NewChatCap())
		}
		if _, err := w.plugin.SendMessage(w.ctx, bob.PN(), text("hello")); err != nil {
			t.Fatalf("a first contact once the props turned the cap off: %v", err)
		}

		// Enabled again, but the cycle has ended: the cap no longer holds.
		w.srv.SetABProps(capProps("3600"))
		w.reconnect()
		eventually(t, "the props turning the cap on", func() bool { return w.plugin.Policy().NewChatCap.Enabled })
		w.clock.Advance(49 * time.Hour)
		carol := w.srv.AddContact(wamock.ContactOptions{})
		if _, err := w.plugin.SendMessage(w.ctx, carol.LID(), text("hello")); errors.Is(err, tctoken.ErrFirstContactGuarded) {
			t.Fatalf("a first contact after the cycle ended: %v", err)
		}
	})
}

// TestRefreshTimelock: RefreshTimelock asks the server at once, within the
// hour the connect's answer stands, records what it says with one event,
// and on a failed query keeps the last known state and returns an error
// matching ErrTimelockQuery.
func TestRefreshTimelock(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db)
		d := w.collectDiagnoses()
		w.connect()
		w.waitTimelockFromQuery(false)
		ends := w.clock.Now().Add(24 * time.Hour).Truncate(time.Second)
		w.srv.SetReachoutTimelock(wamock.ReachoutTimelock{Active: true, Ends: ends, EnforcementType: "DEFAULT"})
		state, err := w.plugin.RefreshTimelock(w.ctx)
		if err != nil || !state.Active || !state.Ends.Equal(ends) || state.Source != tctoken.TimelockFromQuery {
			t.Fatalf("RefreshTimelock: %+v, %v; want active until %s from the query", state, err, ends)
		}
		if n := w.timelockQueries(); n != 2 {
			t.Fatalf("%d timelock queries reached the server, want 2 (connect, refresh)", n)
		}
		if got := w.plugin.Timelock(); !got.Active || !got.Ends.Equal(ends) {
			t.Fatalf("Timelock() after the refresh: %+v", got)
		}
		eventually(t, "the event of the refresh", func() bool {
			events := d.timelockEvents()
			return len(events) == 1 && events[0].Active
		})

		w.srv.SetMexHandler(wamock.ReachoutTimelockQueryID, func(json.RawMessage) (any, error) {
			return nil, &wamock.MexError{Code: 500, Message: "internal"}
		})
		state, err = w.plugin.RefreshTimelock(w.ctx)
		if !errors.Is(err, tctoken.ErrTimelockQuery) {
			t.Fatalf("a failed refresh: %v, want ErrTimelockQuery", err)
		}
		if !state.Active || !state.Ends.Equal(ends) {
			t.Fatalf("the state after a failed refresh: %+v, want the last known lock", state)
		}
	})
}

// TestTimelockQueryFollowsFetchTTL: the timelock query's interval is the
// account-limit fetch TTL the AB props give (20649): with ten minutes, a
// reconnect within them asks nothing, and the schedule asks again once
// they passed.
func TestTimelockQueryFollowsFetchTTL(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db)
		w.srv.SetABProps(wamock.ABProps{Hash: "ttl-600", Refresh: 86400, Props: map[int]string{tctoken.PropNewChatCapFetchTTL: "600"}})
		w.connect()
		eventually(t, "the props' TTL", func() bool { return w.plugin.Policy().NewChatCap.FetchTTL == 10*time.Minute })
		w.waitTimelockFromQuery(false)
		start := w.timelockQueries()

		w.clock.Advance(5 * time.Minute)
		w.reconnect()
		w.waitLog(1, "Skipped the reach-out timelock query")
		if n := w.timelockQueries(); n != start {
			t.Fatalf("%d queries after a reconnect within the TTL, want %d", n, start)
		}
		w.srv.SetReachoutTimelock(wamock.ReachoutTimelock{Active: true, Ends: w.clock.Now().Add(time.Hour)})
		w.clock.Advance(5*time.Minute + time.Second)
		w.waitTimelockFromQuery(true)
		if n := w.timelockQueries(); n != start+1 {
			t.Fatalf("%d queries once the TTL passed, want %d", n, start+1)
		}
	})
}
