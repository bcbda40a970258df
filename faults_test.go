package tctoken_test

import (
	"context"
	"math"
	"strconv"
	"sync/atomic"
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
		// The newer whatsmeow issues by itself, without in-flight
		// deduplication: the count is the plugin's own only on 2025-12.
		if n := len(w.privacyIQsFor(mark, bob.LID())); n != 1 && !w.plugin.NativeTokens() {
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

// makeTokensReadOnly makes every write to the plugin's token table fail,
// while reads keep working: a database mounted read-only, or a role that
// lost its write grant.
func makeTokensReadOnly(t *testing.T, db *dbutil.Database) {
	t.Helper()
	var stmts []string
	if db.Dialect == dbutil.Postgres {
		stmts = []string{
			`CREATE FUNCTION tctoken_test_ro() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'read-only for the test'; END $$ LANGUAGE plpgsql`,
			`CREATE TRIGGER tctoken_test_ro BEFORE INSERT OR UPDATE OR DELETE ON tctoken_tokens FOR EACH ROW EXECUTE FUNCTION tctoken_test_ro()`,
		}
	} else {
		for _, op := range []string{"INSERT", "UPDATE", "DELETE"} {
			stmts = append(stmts, `CREATE TRIGGER tctoken_test_ro_`+op+` BEFORE `+op+` ON tctoken_tokens BEGIN SELECT RAISE(ABORT, 'read-only for the test'); END`)
		}
	}
	for _, stmt := range stmts {
		if _, err := db.Exec(context.Background(), stmt); err != nil {
			t.Fatalf("make the token table read-only: %v", err)
		}
	}
}

// TestIssuanceBacksOffWhenServerRefuses: the server answers every privacy
// IQ with an error. Ten sends make one IQ and one warning; the retry comes
// after a growing interval, and a recovered server records the issuance.
func TestIssuanceBacksOffWhenServerRefuses(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		needOwnIssuance(t, w)
		alice := w.srv.AddContact(wamock.ContactOptions{})
		var refuse atomic.Bool
		refuse.Store(true)
		w.srv.SetPrivacyHandler(func(iq *waBinary.Node) *waBinary.Node {
			if refuse.Load() {
				return wamock.ErrorIQ(iq, 500, "internal-server-error")
			}
			return nil
		})
		send := func(what string) {
			t.Helper()
			if _, err := w.plugin.SendMessage(w.ctx, alice.LID(), text(what)); err != nil {
				t.Fatalf("the send must succeed whatever issuance does: %v", err)
			}
		}
		warnings := func() int { return w.logLines(`"level":"warn"`, `"kind":"issue-refused"`) }
		mark := w.srv.Mark()
		send("first")
		w.waitLog(1, `"level":"warn"`, `"kind":"issue-refused"`)
		for i := range 9 {
			send("again " + strconv.Itoa(i))
		}
		if n := len(w.privacyIQsFor(mark, alice.LID())); n != 1 {
			t.Fatalf("10 sends to a refusing server: want 1 privacy IQ, got %d", n)
		}

		// After the first retry interval (1 minute), one more attempt; it
		// fails too, and the next wait is 2 minutes.
		w.clock.Advance(61 * time.Second)
		send("a minute later")
		eventually(t, "the retry", func() bool { return len(w.privacyIQsFor(mark, alice.LID())) == 2 })
		w.waitLog(1, `"level":"debug"`, `"kind":"issue-refused"`)
		w.clock.Advance(61 * time.Second)
		send("another minute later")

		// The server recovers; after the 2-minute wait the issuance goes
		// through and is recorded.
		refuse.Store(false)
		w.clock.Advance(61 * time.Second)
		send("recovered")
		eventually(t, "the issuance recorded", func() bool {
			e, _ := w.plugin.Get(w.ctx, alice.LID())
			return e != nil && e.SenderTimestamp.Unix() == w.clock.Now().Unix()
		})
		w.plugin.Close()
		if n := len(w.privacyIQsFor(mark, alice.LID())); n != 3 {
			t.Fatalf("want 3 privacy IQs (first, retry after 1 min, retry after 2 min), got %d", n)
		}
		if n := warnings(); n != 1 {
			t.Fatalf("the refusal must be a warning once, got %d", n)
		}
		if n := len(w.srv.MessagesTo(alice.LID())); n != 13 {
			t.Fatalf("every message must go out: %d of 13", n)
		}
	})
}

// TestIssuanceBacksOffWhenDatabaseReadOnly: the server accepts the
// issuance but the plugin cannot record it. One IQ for ten sends, one
// warning, every message out, each with the tctoken the cache still holds.
func TestIssuanceBacksOffWhenDatabaseReadOnly(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		needOwnIssuance(t, w)
		alice := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(alice.LID(), "alice-token") // read, so cached
		makeTokensReadOnly(t, db)
		mark := w.srv.Mark()
		for i := range 10 {
			sent := w.srv.Mark()
			if _, err := w.plugin.SendMessage(w.ctx, alice.LID(), text("hi "+strconv.Itoa(i))); err != nil {
				t.Fatalf("send %d with a read-only database: %v", i, err)
			}
			msg := w.srv.WaitForSince(t, sent, "message to alice", wamock.IsMessageTo(alice.LID()), 5*time.Second)
			if got := string(wamock.MessageToken(msg)); got != "alice-token" {
				t.Fatalf("send %d: the cached tctoken must survive the failed issuance write, got %q", i, got)
			}
			if i == 0 {
				w.waitLog(1, `"level":"warn"`, `"kind":"issue-store"`)
			}
		}
		w.plugin.Close()
		if n := len(w.privacyIQsFor(mark, alice.LID())); n != 1 {
			t.Fatalf("10 sends with a read-only database: want 1 privacy IQ, got %d", n)
		}
		if n := w.logLines(`"level":"warn"`, `"kind":"issue-store"`); n != 1 {
			t.Fatalf("the store failure must be a warning once, got %d", n)
		}
		if n := len(w.srv.MessagesTo(alice.LID())); n != 10 {
			t.Fatalf("every message must go out: %d of 10", n)
		}
	})
}

// TestIssuanceRetriedAfterDisconnect: the connection drops while the
// privacy IQ waits for its answer. The issuance is neither lost nor
// doubled: sends right after the reconnect do not repeat it, and once the
// retry interval passed, the next send issues and records it.
func TestIssuanceRetriedAfterDisconnect(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		needOwnIssuance(t, w)
		alice := w.srv.AddContact(wamock.ContactOptions{})
		var drop atomic.Bool
		drop.Store(true)
		w.srv.SetPrivacyHandler(func(iq *waBinary.Node) *waBinary.Node {
			if drop.CompareAndSwap(true, false) {
				w.srv.DropConnections() // the reply goes nowhere
			}
			return nil
		})
		send := func(what string) {
			t.Helper()
			if _, err := w.plugin.SendMessage(w.ctx, alice.LID(), text(what)); err != nil {
				t.Fatalf("send %q: %v", what, err)
			}
		}
		mark := w.srv.Mark()
		send("first")
		w.waitLog(1, `"level":"warn"`, `"kind":"issue-unreachable"`)
		w.srv.WaitForSince(t, mark, "login after reconnect", wamock.IsIQ("passive", "set"), 15*time.Second)
		if e, _ := w.plugin.Get(w.ctx, alice.LID()); e != nil && !e.SenderTimestamp.IsZero() {
			t.Fatal("an unanswered issuance must not be recorded")
		}
		send("right after the reconnect")
		w.clock.Advance(61 * time.Second)
		send("a minute later")
		eventually(t, "the issuance recorded", func() bool {
			e, _ := w.plugin.Get(w.ctx, alice.LID())
			return e != nil && e.SenderTimestamp.Unix() == w.clock.Now().Unix()
		})
		send("after the issuance")
		w.plugin.Close()
		if n := len(w.privacyIQsFor(mark, alice.LID())); n != 2 {
			t.Fatalf("want 2 privacy IQs (the dropped one, the retry), got %d", n)
		}
	})
}
