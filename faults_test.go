package tctoken_test

import (
	"math"
	"strconv"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	waBinary "go.mau.fi/whatsmeow/binary"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/wamock"
)

// hostilePropsReply is an abt result no sane server sends: a bucket count
// that overflows the cutoff, negative durations, a refresh that overflows
// time.Duration, and one prop whose config_code is not a number. One good
// prop (the NCT gate off) proves that the rest of the reply still applies.
func hostilePropsReply(iq *waBinary.Node) *waBinary.Node {
	prop := func(code, value string) waBinary.Node {
		return waBinary.Node{Tag: "prop", Attrs: waBinary.Attrs{"config_code": code, "config_value": value}}
	}
	maxInt := strconv.FormatInt(math.MaxInt64, 10)
	return wamock.ResultIQ(iq, waBinary.Node{Tag: "props", Attrs: waBinary.Attrs{
		"protocol": "1", "ab_key": "hostile", "hash": "hostile-1", "refresh": maxInt,
	}, Content: []waBinary.Node{
		prop(strconv.Itoa(tctoken.PropReceiverBuckets), maxInt),
		prop(strconv.Itoa(tctoken.PropReceiverDuration), "-604800"),
		prop(strconv.Itoa(tctoken.PropSenderDuration), "-1"),
		prop(strconv.Itoa(tctoken.PropSenderBuckets), "-4"),
		prop("not-a-number", "1"),
		prop(strconv.Itoa(tctoken.PropNCTSend), "0"),
	}})
}

func TestHostileABProps(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db)
		w.srv.SetIQHandler("abt", func(iq *waBinary.Node) *waBinary.Node {
			return hostilePropsReply(iq)
		})
		alice := w.srv.AddContact(wamock.ContactOptions{})
		bob := w.srv.AddContact(wamock.ContactOptions{})
		if err := w.cli.Store.PrivacyTokens.PutPrivacyTokens(w.ctx, storeToken(alice.LID(), "alice-fresh", w.clock.Now().Add(-time.Hour))); err != nil {
			t.Fatal(err)
		}
		abtMark := w.srv.Mark()
		w.connect()

		// The good prop applied despite the bad one, which is named in the log.
		eventually(t, "the good prop applied", func() bool { return !w.plugin.Policy().AttachCSToken })
		w.waitLog(1, "Skipped part of the AB props reply", "not-a-number")
		timing := w.plugin.Policy().Timing
		want := tctoken.Timing{ReceiverDuration: 604800, ReceiverBuckets: 52, SenderDuration: 604800, SenderBuckets: 4}
		if timing != want {
			t.Errorf("timing = %+v, want %+v (count capped to a year, durations ≤ 0 the default)", timing, want)
		}

		// The connect-time prune ran under the hostile count and kept the
		// fresh token.
		w.waitLog(1, "Pruned expired privacy tokens", `"trigger":"connect"`)
		if e, err := w.plugin.Get(w.ctx, alice.LID()); err != nil || e == nil || string(e.Token) != "alice-fresh" {
			t.Fatalf("the fresh token must survive the prune, got %+v, %v", e, err)
		}
		if d := w.plugin.Decide(w.ctx, alice.LID()); d.Attach != tctoken.AttachTCToken {
			t.Fatalf("the fresh token must be attached: %+v", d)
		}

		// Sends do not issue every time: a negative sender duration is the
		// default week, not one second.
		mark := w.srv.Mark()
		for i := range 5 {
			if _, err := w.plugin.SendMessage(w.ctx, bob.LID(), text("hi "+strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
			w.clock.Advance(time.Minute)
		}
		eventually(t, "one issuance", func() bool { return len(w.privacyIQsFor(mark, bob.LID())) >= 1 })

		// refresh = MaxInt64 is capped at 7 days: a day later the schedule
		// (checked once a tick, props before the daily prune) fetches nothing.
		w.clock.Advance(25 * time.Hour)
		w.waitLog(1, "Pruned expired privacy tokens", `"trigger":"daily"`)
		if n := len(filter(w.srv.Since(abtMark), wamock.IsIQ("abt", "get"))); n != 1 {
			t.Fatalf("want 1 abt IQ in the first day with refresh = MaxInt64, got %d", n)
		}
		// A week later the props are fetched again.
		w.clock.Advance(6 * 24 * time.Hour)
		eventually(t, "props refetched after 7 days", func() bool {
			return len(filter(w.srv.Since(abtMark), wamock.IsIQ("abt", "get"))) == 2
		})

		w.plugin.Close()
		if n := len(w.privacyIQsFor(mark, bob.LID())); n != 1 {
			t.Fatalf("5 sends in one bucket must issue once, got %d privacy IQs", n)
		}
	})
}

func filter(nodes []*waBinary.Node, match func(*waBinary.Node) bool) []*waBinary.Node {
	var out []*waBinary.Node
	for _, n := range nodes {
		if match(n) {
			out = append(out, n)
		}
	}
	return out
}
