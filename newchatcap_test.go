package tctoken_test

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.mau.fi/util/dbutil"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/wamock"
)

// capProps enables the new-chat cap with the given fetch TTL (seconds).
func capProps(ttl string) wamock.ABProps {
	return wamock.ABProps{Hash: "cap-on-" + ttl, Refresh: 3600, Props: map[int]string{
		tctoken.PropNewChatCapEnabled: "1", tctoken.PropNewChatCapFetchTTL: ttl,
	}}
}

var (
	cycleStart = time.Unix(1_770_000_000, 0)
	cycleEnd   = time.Unix(1_772_592_000, 0)
	capWarned  = wamock.NewChatCap{Status: "FIRST_WARNING", Total: wamock.Quota(50), Used: wamock.Quota(27),
		CycleStart: cycleStart, CycleEnd: cycleEnd, ServerSent: cycleStart.Add(time.Hour), OTEStatus: "ELIGIBLE", MVStatus: "NOT_ACTIVE"}
	capReached = wamock.NewChatCap{Status: "CAPPED", Total: wamock.Quota(50), Used: wamock.Quota(50),
		CycleStart: cycleStart, CycleEnd: cycleEnd, ServerSent: cycleStart.Add(2 * time.Hour), Numbers: true}
)

// capEvents collects the NewChatCapChanged events a client dispatched.
type capEvents struct {
	mu   sync.Mutex
	list []*tctoken.NewChatCapChanged
}

func (w *world) collectCapEvents() *capEvents {
	ev := &capEvents{}
	w.cli.AddEventHandler(func(evt any) {
		if e, ok := evt.(*tctoken.NewChatCapChanged); ok {
			ev.mu.Lock()
			ev.list = append(ev.list, e)
			ev.mu.Unlock()
		}
	})
	return ev
}

func (ev *capEvents) count() int {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return len(ev.list)
}

func (ev *capEvents) last() *tctoken.NewChatCapChanged {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return ev.list[len(ev.list)-1]
}

// capQueries counts the new-chat cap queries that reached the server
// under each known id.
func (w *world) capQueries() (current, legacy int) {
	return len(w.srv.MexQueries(wamock.NewChatCapQueryID)), len(w.srv.MexQueries(wamock.NewChatCapQueryIDLegacy))
}

func (w *world) waitCapStatus(status tctoken.CapStatus) tctoken.NewChatCapState {
	w.t.Helper()
	var state tctoken.NewChatCapState
	eventually(w.t, "new-chat cap "+string(status), func() bool {
		state = w.plugin.NewChatCap()
		return state.Status == status
	})
	return state
}

// TestNewChatCapFetchedWhenPropsEnable: without AB prop 20865 no query
// goes out; once the props enable it, the connect sends the query with
// WhatsApp Web's variables under the current id, the answer becomes
// NewChatCap, and one event tells the bridge.
func TestNewChatCapFetchedWhenPropsEnable(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db)
		w.srv.SetNewChatCap(capWarned)
		events := w.collectCapEvents()
		w.connect()
		w.waitLog(1, "New-chat cap not enabled by the AB props")
		if current, legacy := w.capQueries(); current+legacy != 0 {
			t.Fatalf("%d+%d cap queries while the props do not enable it", current, legacy)
		}
		if w.plugin.NewChatCap().Known() || events.count() != 0 {
			t.Fatalf("a state without a fetch: %+v", w.plugin.NewChatCap())
		}

		w.srv.SetABProps(capProps("3600"))
		w.reconnect()
		state := w.waitCapStatus(tctoken.CapFirstWarning)
		queries := w.srv.MexQueries(wamock.NewChatCapQueryID)
		if len(queries) != 1 || len(w.srv.MexQueries(wamock.NewChatCapQueryIDLegacy)) != 0 {
			t.Fatalf("queries: %+v", w.srv.MexQueries(""))
		}
		var vars map[string]map[string]string
		if err := json.Unmarshal(queries[0].Variables, &vars); err != nil || vars["input"]["type"] != "INDIVIDUAL_NEW_CHAT_THREAD" {
			t.Errorf("variables %s", queries[0].Variables)
		}
		want := tctoken.NewChatCapState{Status: tctoken.CapFirstWarning, Limit: 50, LimitKnown: true, Used: 27, UsedKnown: true,
			CycleStart: cycleStart, CycleEnd: cycleEnd, ServerSent: cycleStart.Add(time.Hour), OTEStatus: "ELIGIBLE", MVStatus: "NOT_ACTIVE",
			Source: tctoken.NewChatCapFromQuery, Fetched: w.clock.Now().Truncate(time.Second)}
		state.Fetched = state.Fetched.Truncate(time.Second)
		if !sameCap(state, want) || state.Capped() {
			t.Errorf("state %+v\nwant  %+v", state, want)
		}
		eventually(t, "the event", func() bool { return events.count() == 1 })
		if e := events.last(); e.Previous.Known() || e.State.Status != tctoken.CapFirstWarning {
			t.Errorf("event %+v", e)
		}
	})
}

func sameCap(a, b tctoken.NewChatCapState) bool {
	return a.Status == b.Status && a.Limit == b.Limit && a.LimitKnown == b.LimitKnown && a.Used == b.Used && a.UsedKnown == b.UsedKnown &&
		a.CycleStart.Equal(b.CycleStart) && a.CycleEnd.Equal(b.CycleEnd) && a.ServerSent.Equal(b.ServerSent) &&
		a.OTEStatus == b.OTEStatus && a.MVStatus == b.MVStatus && a.Source == b.Source && a.Fetched.Equal(b.Fetched)
}

// TestNewChatCapTTLAndPush: a reconnect within the TTL sends no query;
// the server's push reaches the client, which (both whatsmeows) acks it
// and hands it to no one, so the plugin learns the change at the fetch the
// TTL brings; a fetch that brings the same answer fires no event; and
// RefreshNewChatCap fetches at once, whatever the TTL.
func TestNewChatCapTTLAndPush(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db)
		w.srv.SetABProps(capProps("600"))
		w.srv.SetNewChatCap(capWarned)
		events := w.collectCapEvents()
		w.connect()
		w.waitCapStatus(tctoken.CapFirstWarning)

		w.reconnect()
		w.waitLog(1, "New-chat cap fetched within its TTL")
		if current, legacy := w.capQueries(); current != 1 || legacy != 0 {
			t.Fatalf("%d+%d queries after a reconnect within the TTL, want 1+0", current, legacy)
		}

		if err := w.srv.PushNewChatCap(w.ctx, capReached); err != nil {
			t.Fatal(err)
		}
		if got := w.plugin.NewChatCap().Status; got != tctoken.CapFirstWarning {
			t.Fatalf("status %s right after the push: whatsmeow now hands the push over, and the plugin should read it", got)
		}
		w.clock.Advance(601 * time.Second)
		state := w.waitCapStatus(tctoken.CapCapped)
		if !state.Capped() || !state.InForce(cycleEnd.Add(-time.Second)) || state.InForce(cycleEnd) || state.Used != 50 {
			t.Errorf("capped state %+v", state)
		}
		eventually(t, "the second event", func() bool { return events.count() == 2 })
		if e := events.last(); e.Previous.Status != tctoken.CapFirstWarning || e.State.Status != tctoken.CapCapped {
			t.Errorf("event %+v", e)
		}

		w.clock.Advance(601 * time.Second)
		w.waitLog(1, "New-chat cap unchanged")
		if current, _ := w.capQueries(); current != 3 || events.count() != 2 {
			t.Errorf("%d queries and %d events after a fetch that changed nothing, want 3 and 2", current, events.count())
		}

		w.srv.SetNewChatCap(wamock.NewChatCap{Status: "NONE", Total: wamock.Quota(50), Used: wamock.Quota(3)})
		state, err := w.plugin.RefreshNewChatCap(w.ctx)
		if err != nil || state.Status != tctoken.CapNone || w.plugin.NewChatCap().Status != tctoken.CapNone {
			t.Fatalf("refresh: %+v, %v", state, err)
		}
		if current, _ := w.capQueries(); current != 4 {
			t.Errorf("%d queries after the refresh, want 4", current)
		}
		eventually(t, "the third event", func() bool { return events.count() == 3 })
	})
}

// TestNewChatCapQueryIDs: a configured id is the only one that reaches the
// server; by default, an id the server rejects makes the plugin try the
// older one and keep to it.
func TestNewChatCapQueryIDs(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db, tctoken.WithNewChatCapQueryID("31337"))
		w.srv.SetABProps(capProps("3600"))
		w.srv.SetNewChatCap(capWarned, "31337")
		w.connect()
		w.waitCapStatus(tctoken.CapFirstWarning)
		if current, legacy := w.capQueries(); current+legacy != 0 || len(w.srv.MexQueries("31337")) != 1 {
			t.Errorf("configured id: %+v", w.srv.MexQueries(""))
		}

		other := newBareWorld(t, db, []wamock.Option{wamock.WithOwnPN("15550000002"), wamock.WithOwnLID("100000000000002")})
		other.start()
		other.srv.SetABProps(capProps("3600"))
		other.srv.SetNewChatCap(capWarned, wamock.NewChatCapQueryIDLegacy)
		other.connect()
		other.waitCapStatus(tctoken.CapFirstWarning)
		other.waitLog(1, "answered the new-chat cap query under another query id", wamock.NewChatCapQueryIDLegacy)
		if current, legacy := other.capQueries(); current != 1 || legacy != 1 {
			t.Errorf("fallback: %d+%d queries, want 1+1", current, legacy)
		}
		if _, err := other.plugin.RefreshNewChatCap(other.ctx); err != nil {
			t.Fatal(err)
		}
		if current, legacy := other.capQueries(); current != 1 || legacy != 2 {
			t.Errorf("after the fallback answered: %d+%d queries, want 1+2", current, legacy)
		}
	})
}

// TestNewChatCapFailuresAreHarmless: an error answer and an answer of the
// wrong shape each cost one log line saying what was wrong, keep the last
// known state, and neither holds up the connection or a send; the next
// fetch after the TTL recovers.
func TestNewChatCapFailuresAreHarmless(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db)
		w.srv.SetABProps(capProps("600"))
		refuse := func(json.RawMessage) (any, error) {
			return nil, &wamock.MexError{Code: 500, Message: "capping backend down"}
		}
		w.srv.SetMexHandler(wamock.NewChatCapQueryID, refuse)
		w.srv.SetMexHandler(wamock.NewChatCapQueryIDLegacy, refuse)
		w.connect()
		w.waitLog(1, "Failed to fetch the new-chat cap", "capping backend down", wamock.NewChatCapQueryIDLegacy)
		if w.plugin.NewChatCap().Known() {
			t.Errorf("a state from an error: %+v", w.plugin.NewChatCap())
		}
		alice := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(alice.LID(), "alice-token")
		if _, err := w.plugin.SendMessage(w.ctx, alice.LID(), text("hi")); err != nil {
			t.Fatalf("a send after a failed fetch: %v", err)
		}

		w.srv.SetMexHandler(wamock.NewChatCapQueryID, func(json.RawMessage) (any, error) {
			return map[string]any{"xwa2_message_capping_info": "CAPPED"}, nil
		})
		w.clock.Advance(601 * time.Second)
		w.waitLog(1, "Failed to fetch the new-chat cap", "not an object")
		if w.plugin.NewChatCap().Known() {
			t.Errorf("a state from a bad answer: %+v", w.plugin.NewChatCap())
		}
		if n := w.logLines(`"level":"warn"`, "Failed to fetch the new-chat cap"); n != 1 {
			t.Errorf("%d warnings for a recurring failure, want 1", n)
		}
		if _, legacy := w.capQueries(); legacy != 1 {
			t.Errorf("a bad answer is not a rejected id: %d legacy queries, want 1", legacy)
		}

		w.srv.SetNewChatCap(capWarned)
		w.clock.Advance(601 * time.Second)
		w.waitCapStatus(tctoken.CapFirstWarning)
	})
}

// TestNewChatCapPersists: the state outlives a restart (it is there at
// bind, before any fetch), the TTL counts across the restart, and Explain
// and the metric show it.
func TestNewChatCapPersists(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		reg := prometheus.NewPedanticRegistry()
		w := newWorld(t, db, tctoken.WithMetrics(reg))
		w.srv.SetABProps(capProps("3600"))
		w.srv.SetNewChatCap(capWarned)
		w.connect()
		w.waitCapStatus(tctoken.CapFirstWarning)
		// The connect's fetch records the state before it counts it.
		eventually(t, "the FIRST_WARNING gauge", func() bool {
			return testutil.ToFloat64(metric(t, reg, "tctoken_new_chat_cap_accounts", "status", "FIRST_WARNING")) == 1
		})
		w.srv.SetNewChatCap(wamock.NewChatCap{Status: "THIRD_WARNING"})
		if _, err := w.plugin.RefreshNewChatCap(w.ctx); err != nil {
			t.Fatal(err)
		}
		if got := w.plugin.NewChatCap().Status; got != "THIRD_WARNING" {
			t.Errorf("an unknown status is kept as sent: %q", got)
		}
		if got := testutil.ToFloat64(metric(t, reg, "tctoken_new_chat_cap_accounts", "status", "other")); got != 1 {
			t.Errorf("other gauge %v", got)
		}
		w.srv.SetNewChatCap(capReached)
		if _, err := w.plugin.RefreshNewChatCap(w.ctx); err != nil {
			t.Fatal(err)
		}
		for status, want := range map[string]float64{"CAPPED": 1, "FIRST_WARNING": 0, "other": 0, "NONE": 0} {
			if got := testutil.ToFloat64(metric(t, reg, "tctoken_new_chat_cap_accounts", "status", status)); got != want {
				t.Errorf("%s gauge %v, want %v", status, got, want)
			}
		}
		alice := w.srv.AddContact(wamock.ContactOptions{})
		e, err := w.plugin.Explain(w.ctx, alice.PN())
		if err != nil || e.NewChatCap.Status != tctoken.CapCapped || !e.NewChatCapPolicy.Enabled || e.NewChatCapPolicy.FetchTTL != time.Hour {
			t.Errorf("explain: %+v, %v", e, err)
		}
		before := w.plugin.NewChatCap()

		w.restart()
		if got := w.plugin.NewChatCap(); !sameCap(got, before) || !got.Capped() {
			t.Errorf("after the restart %+v, want %+v", got, before)
		}
		w.waitLog(1, "New-chat cap fetched within its TTL")
		if current, _ := w.capQueries(); current != 3 {
			t.Errorf("%d queries: the restart fetched within the TTL", current)
		}
		w.clock.Advance(time.Hour + time.Second)
		eventually(t, "the fetch after the TTL", func() bool { current, _ := w.capQueries(); return current == 4 })
	})
}
