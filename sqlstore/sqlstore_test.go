package sqlstore_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/sqlstore"
)

var (
	ourJID   = types.NewADJID("111", 0, 3)
	otherJID = types.NewADJID("222", 0, 7)

	alicePN  = types.NewJID("1001", types.DefaultUserServer)
	aliceLID = types.NewJID("9001", types.HiddenUserServer)
	bobPN    = types.NewJID("1002", types.DefaultUserServer)
	carolLID = types.NewJID("9003", types.HiddenUserServer)
	// boomPN makes the test triggers of testBatchAtomicity fail a write.
	boomPN = types.NewJID("666", types.DefaultUserServer)
)

const clockUnix = 1_700_000_000

func newContainer(t *testing.T, db *dbutil.Database) *sqlstore.Container {
	t.Helper()
	c := sqlstore.New(db)
	c.SetClock(func() time.Time { return time.Unix(clockUnix, 0) })
	if err := c.Upgrade(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

func put(t *testing.T, s *sqlstore.Store, writes ...sqlstore.TokenWrite) []bool {
	t.Helper()
	changed, err := s.PutTokens(context.Background(), writes...)
	if err != nil {
		t.Fatal(err)
	}
	return changed
}

func get(t *testing.T, s *sqlstore.Store, contact types.JID) *sqlstore.Entry {
	t.Helper()
	entries, err := s.GetMany(context.Background(), contact)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		return nil
	}
	return entries[0]
}

func assertEntry(t *testing.T, got *sqlstore.Entry, want sqlstore.Entry) {
	t.Helper()
	if got == nil {
		t.Fatalf("no row for %s, want %+v", want.Contact, want)
	}
	if got.Contact != want.Contact || !bytes.Equal(got.Token, want.Token) || got.TokenTS != want.TokenTS || got.SenderTS != want.SenderTS {
		t.Errorf("row = {%s %q %d %d}, want {%s %q %d %d}",
			got.Contact, got.Token, got.TokenTS, got.SenderTS, want.Contact, want.Token, want.TokenTS, want.SenderTS)
	}
	if want.Token == nil && got.Token != nil {
		t.Errorf("token = %q, want nil", got.Token)
	}
}

func assertChanged(t *testing.T, got []bool, want ...bool) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("changed = %v, want %v", got, want)
	}
}

func TestPutTokensMonotonic(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		s := newContainer(t, db).ForAccount(ourJID)
		w := func(token string, ts int64) sqlstore.TokenWrite {
			return sqlstore.TokenWrite{Contact: aliceLID, Token: []byte(token), TokenTS: ts}
		}

		assertChanged(t, put(t, s, w("first", 100)), true)
		assertEntry(t, get(t, s, aliceLID), sqlstore.Entry{Contact: aliceLID, Token: []byte("first"), TokenTS: 100})

		// Older never overwrites.
		assertChanged(t, put(t, s, w("older", 99)), false)
		assertEntry(t, get(t, s, aliceLID), sqlstore.Entry{Contact: aliceLID, Token: []byte("first"), TokenTS: 100})

		// An exact duplicate changes nothing.
		assertChanged(t, put(t, s, w("first", 100)), false)

		// Same bytes, newer: only the timestamp moves.
		assertChanged(t, put(t, s, w("first", 150)), true)
		assertEntry(t, get(t, s, aliceLID), sqlstore.Entry{Contact: aliceLID, Token: []byte("first"), TokenTS: 150})

		// Same timestamp, other bytes: the newer write wins.
		assertChanged(t, put(t, s, w("second", 150)), true)
		assertEntry(t, get(t, s, aliceLID), sqlstore.Entry{Contact: aliceLID, Token: []byte("second"), TokenTS: 150})

		assertChanged(t, put(t, s, w("third", 200)), true)
		assertEntry(t, get(t, s, aliceLID), sqlstore.Entry{Contact: aliceLID, Token: []byte("third"), TokenTS: 200})

		// In one batch: per-write results, applied in order.
		assertChanged(t, put(t, s,
			sqlstore.TokenWrite{Contact: bobPN, Token: []byte("bob-new"), TokenTS: 10},
			w("stale", 1),
			sqlstore.TokenWrite{Contact: bobPN, Token: []byte("bob-old"), TokenTS: 5},
		), true, false, false)
		assertEntry(t, get(t, s, bobPN), sqlstore.Entry{Contact: bobPN, Token: []byte("bob-new"), TokenTS: 10})

		// A device JID is stored under the contact without device part.
		bobDevice := types.NewADJID(bobPN.User, 0, 12)
		assertChanged(t, put(t, s, sqlstore.TokenWrite{Contact: bobDevice, Token: []byte("bob-dev"), TokenTS: 11}), true)
		assertEntry(t, get(t, s, bobPN), sqlstore.Entry{Contact: bobPN, Token: []byte("bob-dev"), TokenTS: 11})
		assertEntry(t, get(t, s, bobDevice), sqlstore.Entry{Contact: bobPN, Token: []byte("bob-dev"), TokenTS: 11})

		if entry := get(t, s, carolLID); entry != nil {
			t.Errorf("Get of unknown contact = %+v, want nil", entry)
		}

		var updatedAt int64
		if err := db.QueryRow(context.Background(), "SELECT updated_at FROM tctoken_tokens WHERE their_jid=$1", aliceLID.String()).Scan(&updatedAt); err != nil {
			t.Fatal(err)
		} else if updatedAt != clockUnix {
			t.Errorf("updated_at = %d, want the injected clock's %d", updatedAt, clockUnix)
		}
	})
}

func TestPutTokensRejectsInvalid(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := newContainer(t, db).ForAccount(ourJID)
		for name, batch := range map[string][]sqlstore.TokenWrite{
			"empty token":        {{Contact: alicePN, Token: []byte("ok"), TokenTS: 1}, {Contact: bobPN, Token: []byte{}, TokenTS: 1}},
			"nil token":          {{Contact: alicePN, Token: []byte("ok"), TokenTS: 1}, {Contact: bobPN, TokenTS: 1}},
			"no contact":         {{Contact: alicePN, Token: []byte("ok"), TokenTS: 1}, {Token: []byte("x"), TokenTS: 1}},
			"negative timestamp": {{Contact: alicePN, Token: []byte("ok"), TokenTS: 1}, {Contact: bobPN, Token: []byte("x"), TokenTS: -1}},
		} {
			if _, err := s.PutTokens(ctx, batch...); err == nil {
				t.Errorf("%s: no error", name)
			}
		}
		if entry := get(t, s, alicePN); entry != nil {
			t.Errorf("a rejected batch wrote %+v", entry)
		}
		if changed, err := s.PutTokens(ctx); err != nil || len(changed) != 0 {
			t.Errorf("empty batch = %v, %v", changed, err)
		}
	})
}

func TestSenderTimestamps(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := newContainer(t, db).ForAccount(ourJID)
		setSender := func(ts int64, contacts ...types.JID) {
			t.Helper()
			if err := s.SetSenderTimestamps(ctx, ts, contacts...); err != nil {
				t.Fatal(err)
			}
		}

		// A contact who never sent us a token gets a row without one.
		setSender(100, alicePN)
		assertEntry(t, get(t, s, alicePN), sqlstore.Entry{Contact: alicePN, SenderTS: 100})
		if contacts, err := s.Contacts(ctx); err != nil || len(contacts) != 0 {
			t.Errorf("Contacts = %v, %v; want none (no tokens stored)", contacts, err)
		}

		// Receiving a token keeps the sender timestamp.
		assertChanged(t, put(t, s, sqlstore.TokenWrite{Contact: alicePN, Token: []byte("tok"), TokenTS: 50}), true)
		assertEntry(t, get(t, s, alicePN), sqlstore.Entry{Contact: alicePN, Token: []byte("tok"), TokenTS: 50, SenderTS: 100})

		// Never backwards, and zero never erases.
		setSender(90, alicePN)
		setSender(0, alicePN)
		assertEntry(t, get(t, s, alicePN), sqlstore.Entry{Contact: alicePN, Token: []byte("tok"), TokenTS: 50, SenderTS: 100})

		// Batch: moves forward and leaves the token alone.
		setSender(200, alicePN, bobPN)
		assertEntry(t, get(t, s, alicePN), sqlstore.Entry{Contact: alicePN, Token: []byte("tok"), TokenTS: 50, SenderTS: 200})
		assertEntry(t, get(t, s, bobPN), sqlstore.Entry{Contact: bobPN, SenderTS: 200})

		assertChanged(t, put(t, s, sqlstore.TokenWrite{Contact: alicePN, Token: []byte("tok2"), TokenTS: 60}), true)
		assertEntry(t, get(t, s, alicePN), sqlstore.Entry{Contact: alicePN, Token: []byte("tok2"), TokenTS: 60, SenderTS: 200})

		if err := s.SetSenderTimestamps(ctx, -1, alicePN); err == nil {
			t.Error("negative sender timestamp: no error")
		}
		if err := s.SetSenderTimestamps(ctx, 300, alicePN, types.EmptyJID); err == nil {
			t.Error("empty contact: no error")
		}
		assertEntry(t, get(t, s, alicePN), sqlstore.Entry{Contact: alicePN, Token: []byte("tok2"), TokenTS: 60, SenderTS: 200})
	})
}

func TestGetMany(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := newContainer(t, db).ForAccount(ourJID)
		getMany := func(contacts ...types.JID) map[types.JID]sqlstore.Entry {
			t.Helper()
			entries, err := s.GetMany(ctx, contacts...)
			if err != nil {
				t.Fatal(err)
			}
			byContact := make(map[types.JID]sqlstore.Entry, len(entries))
			for _, entry := range entries {
				byContact[entry.Contact] = *entry
			}
			return byContact
		}

		if got := getMany(aliceLID, alicePN); len(got) != 0 {
			t.Errorf("empty store: %+v", got)
		}
		if got := getMany(); len(got) != 0 {
			t.Errorf("no contacts: %+v", got)
		}

		put(t, s, sqlstore.TokenWrite{Contact: alicePN, Token: []byte("pn"), TokenTS: 10})
		put(t, s, sqlstore.TokenWrite{Contact: aliceLID, Token: []byte("lid"), TokenTS: 5})
		put(t, s, sqlstore.TokenWrite{Contact: bobPN, Token: []byte("bob"), TokenTS: 5})
		// A row holding only a sender timestamp is returned too.
		if err := s.SetSenderTimestamps(ctx, 77, carolLID); err != nil {
			t.Fatal(err)
		}
		got := getMany(aliceLID, alicePN, carolLID)
		if len(got) != 3 {
			t.Fatalf("want the rows of the three keys asked for, got %+v", got)
		}
		assertEntry(t, ptr(got[alicePN]), sqlstore.Entry{Contact: alicePN, Token: []byte("pn"), TokenTS: 10})
		assertEntry(t, ptr(got[aliceLID]), sqlstore.Entry{Contact: aliceLID, Token: []byte("lid"), TokenTS: 5})
		assertEntry(t, ptr(got[carolLID]), sqlstore.Entry{Contact: carolLID, SenderTS: 77})
	})
}

func ptr(e sqlstore.Entry) *sqlstore.Entry { return &e }

func TestContacts(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		c := newContainer(t, db)
		s := c.ForAccount(ourJID)
		put(t, s,
			sqlstore.TokenWrite{Contact: bobPN, Token: []byte("b"), TokenTS: 1},
			sqlstore.TokenWrite{Contact: aliceLID, Token: []byte("a"), TokenTS: 1},
		)
		put(t, c.ForAccount(otherJID), sqlstore.TokenWrite{Contact: alicePN, Token: []byte("other"), TokenTS: 1})
		if err := s.SetSenderTimestamps(ctx, 5, carolLID); err != nil {
			t.Fatal(err)
		}
		contacts, err := s.Contacts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(contacts, func(a, b types.JID) int { return strings.Compare(a.String(), b.String()) })
		if want := []types.JID{bobPN, aliceLID}; !slices.Equal(contacts, want) {
			t.Errorf("Contacts = %v, want %v", contacts, want)
		}
	})
}

func TestPrune(t *testing.T) {
	const recvCutoff, sendCutoff = 1000, 2000
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := newContainer(t, db).ForAccount(ourJID)
		jid := func(user string) types.JID { return types.NewJID(user, types.HiddenUserServer) }
		type row struct {
			user            string
			token           string
			tokenTS, sender int64
		}
		for _, r := range []row{
			{"expired-nosender", "t", recvCutoff - 1, 0},
			{"expired-validsender", "t", recvCutoff - 1, sendCutoff},
			{"expired-stalesender", "t", recvCutoff - 1, sendCutoff - 1},
			{"expired-zero", "t", 0, 0},
			{"valid-nosender", "t", recvCutoff, 0},
			{"valid-stalesender", "t", recvCutoff, sendCutoff - 1},
			{"senderonly-stale", "", 0, sendCutoff - 1},
			{"senderonly-valid", "", 0, sendCutoff},
		} {
			if r.token != "" {
				put(t, s, sqlstore.TokenWrite{Contact: jid(r.user), Token: []byte(r.token), TokenTS: r.tokenTS})
			}
			if r.sender != 0 {
				if err := s.SetSenderTimestamps(ctx, r.sender, jid(r.user)); err != nil {
					t.Fatal(err)
				}
			}
		}
		// Another account's expired token is not ours to prune.
		other := newContainer(t, db).ForAccount(otherJID)
		put(t, other, sqlstore.TokenWrite{Contact: jid("expired-nosender"), Token: []byte("t"), TokenTS: 1})

		removed, err := s.Prune(ctx, recvCutoff, sendCutoff)
		if err != nil {
			t.Fatal(err)
		} else if removed != 4 {
			t.Errorf("Prune removed %d tokens, want 4", removed)
		}
		for _, gone := range []string{"expired-nosender", "expired-stalesender", "expired-zero", "senderonly-stale"} {
			if entry := get(t, s, jid(gone)); entry != nil {
				t.Errorf("%s survived pruning: %+v", gone, entry)
			}
		}
		assertEntry(t, get(t, s, jid("expired-validsender")), sqlstore.Entry{Contact: jid("expired-validsender"), SenderTS: sendCutoff})
		assertEntry(t, get(t, s, jid("valid-nosender")), sqlstore.Entry{Contact: jid("valid-nosender"), Token: []byte("t"), TokenTS: recvCutoff})
		assertEntry(t, get(t, s, jid("valid-stalesender")), sqlstore.Entry{Contact: jid("valid-stalesender"), Token: []byte("t"), TokenTS: recvCutoff, SenderTS: sendCutoff - 1})
		assertEntry(t, get(t, s, jid("senderonly-valid")), sqlstore.Entry{Contact: jid("senderonly-valid"), SenderTS: sendCutoff})
		assertEntry(t, get(t, other, jid("expired-nosender")), sqlstore.Entry{Contact: jid("expired-nosender"), Token: []byte("t"), TokenTS: 1})

		if removed, err = s.Prune(ctx, recvCutoff, sendCutoff); err != nil || removed != 0 {
			t.Errorf("second Prune = %d, %v; want 0", removed, err)
		}

		// A zero token timestamp is expired whatever the cutoff.
		put(t, s, sqlstore.TokenWrite{Contact: jid("zero"), Token: []byte("t"), TokenTS: 0})
		if removed, err = s.Prune(ctx, 0, 0); err != nil || removed != 1 {
			t.Errorf("Prune(0, 0) = %d, %v; want the zero-timestamp token", removed, err)
		}
	})
}

func TestMendHistoryTimestamp(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := newContainer(t, db).ForAccount(ourJID)
		mend := func(token string, wrong, right int64) bool {
			t.Helper()
			changed, err := s.MendHistoryTimestamp(ctx, alicePN, []byte(token), wrong, right)
			if err != nil {
				t.Fatal(err)
			}
			return changed
		}

		if mend("hist", 500, 300) {
			t.Error("mended a row that does not exist")
		}
		// whatsmeow filed the sender timestamp 500 as the token timestamp.
		put(t, s, sqlstore.TokenWrite{Contact: alicePN, Token: []byte("hist"), TokenTS: 500})
		if mend("other", 500, 300) {
			t.Error("mended a row holding other bytes")
		}
		if mend("hist", 499, 300) {
			t.Error("mended a row whose timestamp is not the wrong one")
		}
		if !mend("hist", 500, 300) {
			t.Error("did not mend")
		}
		assertEntry(t, get(t, s, alicePN), sqlstore.Entry{Contact: alicePN, Token: []byte("hist"), TokenTS: 300})
		if mend("hist", 500, 300) {
			t.Error("mended twice")
		}
		// The mended timestamp is guarded like any other.
		assertChanged(t, put(t, s, sqlstore.TokenWrite{Contact: alicePN, Token: []byte("older"), TokenTS: 299}), false)
		assertChanged(t, put(t, s, sqlstore.TokenWrite{Contact: alicePN, Token: []byte("newer"), TokenTS: 400}), true)
		if mend("newer", 400, 400) {
			t.Error("equal timestamps reported a change")
		}
	})
}

// whatsmeow 2025-12's history write files our sender timestamp as the token
// timestamp. Once the row knows the real token timestamp and our sender
// timestamp, that write must not replace it, while a real newer token does.
func TestPutTokensRefusesMisfiledHistoryTimestamp(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := newContainer(t, db).ForAccount(ourJID)
		put(t, s, sqlstore.TokenWrite{Contact: alicePN, Token: []byte("hist"), TokenTS: 300})
		if err := s.SetSenderTimestamps(ctx, 500, alicePN); err != nil {
			t.Fatal(err)
		}
		assertChanged(t, put(t, s, sqlstore.TokenWrite{Contact: alicePN, Token: []byte("hist"), TokenTS: 500}), false)
		assertEntry(t, get(t, s, alicePN), sqlstore.Entry{Contact: alicePN, Token: []byte("hist"), TokenTS: 300, SenderTS: 500})
		// The same bytes at another newer time only refresh the timestamp.
		assertChanged(t, put(t, s, sqlstore.TokenWrite{Contact: alicePN, Token: []byte("hist"), TokenTS: 400}), true)
		// New bytes at our sender timestamp are a new token, stored.
		assertChanged(t, put(t, s, sqlstore.TokenWrite{Contact: alicePN, Token: []byte("new"), TokenTS: 500}), true)
		assertEntry(t, get(t, s, alicePN), sqlstore.Entry{Contact: alicePN, Token: []byte("new"), TokenTS: 500, SenderTS: 500})
		// A row without a sender timestamp keeps the plain monotonic rule.
		put(t, s, sqlstore.TokenWrite{Contact: bobPN, Token: []byte("b"), TokenTS: 300})
		assertChanged(t, put(t, s, sqlstore.TokenWrite{Contact: bobPN, Token: []byte("b"), TokenTS: 500}), true)
	})
}

func TestSalt(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		c := newContainer(t, db)
		s := c.ForAccount(ourJID)
		assertSalt := func(wantSalt string, wantSource sqlstore.SaltSource, wantFound bool) {
			t.Helper()
			salt, source, found, err := s.GetSalt(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if found != wantFound || source != wantSource || string(salt) != wantSalt || (wantSalt == "" && salt != nil) {
				t.Errorf("GetSalt = %q, %q, %v; want %q, %q, %v", salt, source, found, wantSalt, wantSource, wantFound)
			}
		}
		history := func(salt string) bool {
			t.Helper()
			applied, err := s.SetHistorySalt(ctx, []byte(salt))
			if err != nil {
				t.Fatal(err)
			}
			return applied
		}
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}

		assertSalt("", "", false)
		// History sync applies alone, once.
		if !history("hist1") {
			t.Error("history salt not applied to an empty store")
		}
		assertSalt("hist1", sqlstore.SaltFromHistorySync, true)
		if history("hist2") {
			t.Error("second history salt applied")
		}
		assertSalt("hist1", sqlstore.SaltFromHistorySync, true)

		// App state overrides it, and history never overrides app state.
		must(s.SetAppStateSalt(ctx, []byte("app1")))
		assertSalt("app1", sqlstore.SaltFromAppState, true)
		if history("hist3") {
			t.Error("history salt overrode app state")
		}
		assertSalt("app1", sqlstore.SaltFromAppState, true)

		// A removal is a tombstone history cannot revive; app state can.
		must(s.RemoveAppStateSalt(ctx))
		assertSalt("", sqlstore.SaltFromAppState, true)
		if history("hist4") {
			t.Error("history salt revived a removed salt")
		}
		assertSalt("", sqlstore.SaltFromAppState, true)
		must(s.SetAppStateSalt(ctx, []byte("app2")))
		assertSalt("app2", sqlstore.SaltFromAppState, true)

		// Empty salts are refused and change nothing.
		if err := s.SetAppStateSalt(ctx, nil); err == nil {
			t.Error("empty app state salt: no error")
		}
		if _, err := s.SetHistorySalt(ctx, []byte{}); err == nil {
			t.Error("empty history salt: no error")
		}
		assertSalt("app2", sqlstore.SaltFromAppState, true)

		// A removal on a fresh account is a tombstone too.
		o := c.ForAccount(otherJID)
		must(o.RemoveAppStateSalt(ctx))
		if applied, err := o.SetHistorySalt(ctx, []byte("hist")); err != nil || applied {
			t.Errorf("history salt after removal on a fresh account = %v, %v", applied, err)
		}
	})
}

func TestProps(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := newContainer(t, db).ForAccount(ourJID)
		assertProps := func(want *sqlstore.PropsSnapshot) {
			t.Helper()
			got, err := s.GetProps(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want == nil || got == nil {
				if want != got {
					t.Errorf("GetProps = %+v, want %+v", got, want)
				}
				return
			}
			if got.Hash != want.Hash || got.Refresh != want.Refresh || got.FetchedAt != want.FetchedAt || !maps.Equal(got.Values, want.Values) {
				t.Errorf("GetProps = %+v, want %+v", got, want)
			}
			if got.Values == nil {
				t.Error("GetProps returned nil Values")
			}
		}
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}

		assertProps(nil)
		must(s.ReplaceProps(ctx, sqlstore.PropsSnapshot{Hash: "h1", Refresh: 86400, FetchedAt: 1000, Values: map[int]string{865: "604800", 909: "4"}}))
		assertProps(&sqlstore.PropsSnapshot{Hash: "h1", Refresh: 86400, FetchedAt: 1000, Values: map[int]string{865: "604800", 909: "4"}})

		// A delta updates and adds, keeps the rest.
		must(s.MergeProps(ctx, sqlstore.PropsSnapshot{Hash: "h2", Refresh: 3600, FetchedAt: 2000, Values: map[int]string{909: "26", 996: "86400"}}))
		assertProps(&sqlstore.PropsSnapshot{Hash: "h2", Refresh: 3600, FetchedAt: 2000, Values: map[int]string{865: "604800", 909: "26", 996: "86400"}})

		// A full reply replaces everything.
		must(s.ReplaceProps(ctx, sqlstore.PropsSnapshot{Hash: "h3", Refresh: 60, FetchedAt: 3000, Values: map[int]string{997: "3"}}))
		assertProps(&sqlstore.PropsSnapshot{Hash: "h3", Refresh: 60, FetchedAt: 3000, Values: map[int]string{997: "3"}})

		// A reply without props still counts as fetched.
		must(s.ReplaceProps(ctx, sqlstore.PropsSnapshot{Hash: "h4", Refresh: 60, FetchedAt: 4000}))
		assertProps(&sqlstore.PropsSnapshot{Hash: "h4", Refresh: 60, FetchedAt: 4000, Values: map[int]string{}})

		// More props than fit in one statement.
		many := make(map[int]string, 2500)
		for i := range 2500 {
			many[i+1] = fmt.Sprint(i)
		}
		must(s.ReplaceProps(ctx, sqlstore.PropsSnapshot{Hash: "h5", Refresh: 1, FetchedAt: 5000, Values: many}))
		assertProps(&sqlstore.PropsSnapshot{Hash: "h5", Refresh: 1, FetchedAt: 5000, Values: many})
	})
}

func TestAccountScoping(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		c := newContainer(t, db)
		// Same user, another device: still another account.
		ourOtherDevice := types.NewADJID(ourJID.User, 0, 4)
		accounts := []types.JID{ourJID, otherJID, ourOtherDevice}
		for i, account := range accounts {
			s := c.ForAccount(account)
			tag := fmt.Sprintf("acct%d", i)
			put(t, s, sqlstore.TokenWrite{Contact: alicePN, Token: []byte(tag), TokenTS: int64(100 + i)})
			if err := s.SetSenderTimestamps(ctx, int64(200+i), alicePN, bobPN); err != nil {
				t.Fatal(err)
			}
			if err := s.SetAppStateSalt(ctx, []byte(tag)); err != nil {
				t.Fatal(err)
			}
			if err := s.ReplaceProps(ctx, sqlstore.PropsSnapshot{Hash: tag, Values: map[int]string{865: tag}}); err != nil {
				t.Fatal(err)
			}
		}
		for i, account := range accounts {
			s := c.ForAccount(account)
			tag := fmt.Sprintf("acct%d", i)
			assertEntry(t, get(t, s, alicePN), sqlstore.Entry{Contact: alicePN, Token: []byte(tag), TokenTS: int64(100 + i), SenderTS: int64(200 + i)})
			if salt, _, _, err := s.GetSalt(ctx); err != nil || string(salt) != tag {
				t.Errorf("%s: salt = %q, %v", account, salt, err)
			}
			if props, err := s.GetProps(ctx); err != nil || props == nil || props.Values[865] != tag || len(props.Values) != 1 {
				t.Errorf("%s: props = %+v, %v", account, props, err)
			}
		}

		// Pruning one account leaves the others. (All sender timestamps stay
		// valid, so the rows themselves survive.)
		if removed, err := c.ForAccount(ourJID).Prune(ctx, 1000, 0); err != nil || removed != 1 {
			t.Errorf("Prune = %d, %v; want 1", removed, err)
		}
		for _, account := range accounts[1:] {
			if entry := get(t, c.ForAccount(account), alicePN); entry == nil || entry.Token == nil {
				t.Errorf("%s lost its token to another account's Prune: %+v", account, entry)
			}
		}

		// Deleting one account leaves the others.
		if err := c.DeleteAccount(ctx, otherJID); err != nil {
			t.Fatal(err)
		}
		gone := c.ForAccount(otherJID)
		if entry := get(t, gone, alicePN); entry != nil {
			t.Errorf("token survived DeleteAccount: %+v", entry)
		}
		if entry := get(t, gone, bobPN); entry != nil {
			t.Errorf("sender timestamp survived DeleteAccount: %+v", entry)
		}
		if _, _, found, err := gone.GetSalt(ctx); err != nil || found {
			t.Errorf("salt survived DeleteAccount: %v, %v", found, err)
		}
		if props, err := gone.GetProps(ctx); err != nil || props != nil {
			t.Errorf("props survived DeleteAccount: %+v, %v", props, err)
		}
		for _, account := range []types.JID{ourJID, ourOtherDevice} {
			s := c.ForAccount(account)
			if entry := get(t, s, bobPN); entry == nil {
				t.Errorf("%s lost its rows to another account's DeleteAccount", account)
			}
			if _, _, found, err := s.GetSalt(ctx); err != nil || !found {
				t.Errorf("%s lost its salt to another account's DeleteAccount: %v", account, err)
			}
			if props, err := s.GetProps(ctx); err != nil || props == nil {
				t.Errorf("%s lost its props to another account's DeleteAccount: %v", account, err)
			}
		}
	})
}

// installFailingTriggers makes any insert for boomPN into tctoken_tokens, and
// of prop code 666, fail inside the database, halfway through a batch.
func installFailingTriggers(t *testing.T, db *dbutil.Database) {
	t.Helper()
	var queries []string
	switch db.Dialect {
	case dbutil.SQLite:
		queries = []string{
			`CREATE TRIGGER boom_tokens BEFORE INSERT ON tctoken_tokens
			WHEN NEW.their_jid = '` + boomPN.String() + `' BEGIN SELECT RAISE(ABORT, 'boom'); END`,
			`CREATE TRIGGER boom_props BEFORE INSERT ON tctoken_ab_props
			WHEN NEW.code = 666 BEGIN SELECT RAISE(ABORT, 'boom'); END`,
		}
	case dbutil.Postgres:
		queries = []string{
			`CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				-- plpgsql does not short-circuit, and each table lacks the
				-- other's column, hence the nesting.
				IF TG_TABLE_NAME = 'tctoken_tokens' THEN
					IF NEW.their_jid = '` + boomPN.String() + `' THEN
						RAISE EXCEPTION 'boom';
					END IF;
				ELSIF NEW.code = 666 THEN
					RAISE EXCEPTION 'boom';
				END IF;
				RETURN NEW;
			END $$`,
			`CREATE TRIGGER boom_tokens BEFORE INSERT ON tctoken_tokens FOR EACH ROW EXECUTE FUNCTION boom()`,
			`CREATE TRIGGER boom_props BEFORE INSERT ON tctoken_ab_props FOR EACH ROW EXECUTE FUNCTION boom()`,
		}
	}
	for _, query := range queries {
		if _, err := db.Exec(context.Background(), query); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBatchAtomicity(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := newContainer(t, db).ForAccount(ourJID)
		put(t, s, sqlstore.TokenWrite{Contact: alicePN, Token: []byte("kept"), TokenTS: 1})
		if err := s.ReplaceProps(ctx, sqlstore.PropsSnapshot{Hash: "old", Values: map[int]string{865: "1"}}); err != nil {
			t.Fatal(err)
		}
		installFailingTriggers(t, db)

		secretToken := []byte("secret-token-bytes")
		_, err := s.PutTokens(ctx,
			sqlstore.TokenWrite{Contact: alicePN, Token: secretToken, TokenTS: 2},
			sqlstore.TokenWrite{Contact: bobPN, Token: secretToken, TokenTS: 2},
			sqlstore.TokenWrite{Contact: boomPN, Token: secretToken, TokenTS: 2},
		)
		if err == nil {
			t.Fatal("PutTokens: no error from the failing write")
		}
		if !strings.Contains(err.Error(), boomPN.String()) {
			t.Errorf("error does not name the contact: %v", err)
		}
		assertNoSecret(t, err.Error(), secretToken)
		assertEntry(t, get(t, s, alicePN), sqlstore.Entry{Contact: alicePN, Token: []byte("kept"), TokenTS: 1})
		if entry := get(t, s, bobPN); entry != nil {
			t.Errorf("failed batch wrote %+v", entry)
		}

		if err = s.SetSenderTimestamps(ctx, 9, alicePN, boomPN); err == nil {
			t.Fatal("SetSenderTimestamps: no error from the failing write")
		}
		assertEntry(t, get(t, s, alicePN), sqlstore.Entry{Contact: alicePN, Token: []byte("kept"), TokenTS: 1})

		if err = s.ReplaceProps(ctx, sqlstore.PropsSnapshot{Hash: "new", Values: map[int]string{1: "a", 666: "b"}}); err == nil {
			t.Fatal("ReplaceProps: no error from the failing write")
		}
		if props, err := s.GetProps(ctx); err != nil || props == nil || props.Hash != "old" || !maps.Equal(props.Values, map[int]string{865: "1"}) {
			t.Errorf("failed ReplaceProps changed the props: %+v, %v", props, err)
		}
	})
}

// Token and salt bytes must not reach logs, even with every query and its
// arguments logged, nor errors.
func TestSecretsNeverLogged(t *testing.T) {
	prevLevel := zerolog.GlobalLevel()
	zerolog.SetGlobalLevel(zerolog.TraceLevel)
	t.Cleanup(func() { zerolog.SetGlobalLevel(prevLevel) })

	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		var logs bytes.Buffer
		log := zerolog.New(&logs).Level(zerolog.TraceLevel)
		db.Log = dbutil.ZeroLogger(log, dbutil.ZeroLogSettings{TraceLogAllQueries: true})
		s := newContainer(t, db).ForAccount(ourJID)

		token := []byte("very-secret-token")
		salt := []byte("very-secret-salt")
		put(t, s, sqlstore.TokenWrite{Contact: alicePN, Token: token, TokenTS: 10})
		if _, err := s.MendHistoryTimestamp(ctx, alicePN, token, 10, 5); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetHistorySalt(ctx, salt); err != nil {
			t.Fatal(err)
		}
		if err := s.SetAppStateSalt(ctx, salt); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), "query_args") {
			t.Fatal("queries were not logged; the test proves nothing")
		}
		assertNoSecret(t, logs.String(), token)
		assertNoSecret(t, logs.String(), salt)
		// The driver still got the real bytes.
		assertEntry(t, get(t, s, alicePN), sqlstore.Entry{Contact: alicePN, Token: token, TokenTS: 5})
	})
}

func assertNoSecret(t *testing.T, text string, secret []byte) {
	t.Helper()
	for _, form := range []string{
		string(secret),
		base64.StdEncoding.EncodeToString(secret),
		base64.RawStdEncoding.EncodeToString(secret),
		hex.EncodeToString(secret),
		fmt.Sprint(secret),
	} {
		if strings.Contains(text, form) {
			t.Errorf("secret bytes leaked as %q in: %s", form, text)
		}
	}
}
