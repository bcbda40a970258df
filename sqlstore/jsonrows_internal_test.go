package sqlstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/internal/dbtest"
)

// SQLite takes a batch's rows as one JSON parameter where it can, and as a
// VALUES list where it cannot (an older system SQLite): both ways write
// and answer the same, for contacts that need escaping in JSON too.
func TestSQLiteRowsAsJSONOrValues(t *testing.T) {
	results := map[int32]string{}
	for _, mode := range []int32{sqliteRowsJSON, sqliteRowsValues} {
		db := dbtest.SQLite(t)
		ctx := context.Background()
		c := New(db)
		if err := c.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		if mode == sqliteRowsJSON && !c.ForAccount(types.NewJID("1000", types.DefaultUserServer)).rowsAsJSON(ctx) {
			t.Fatal("the bundled SQLite has json_each and unhex, but the probe said no")
		}
		c.sqliteRows.Store(mode)
		if _, err := db.Exec(ctx, `CREATE TABLE IF NOT EXISTS whatsmeow_lid_map (lid TEXT PRIMARY KEY, pn TEXT UNIQUE NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `CREATE TABLE IF NOT EXISTS whatsmeow_privacy_tokens (our_jid TEXT, their_jid TEXT, token bytea NOT NULL, timestamp BIGINT NOT NULL, PRIMARY KEY (our_jid, their_jid))`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `INSERT INTO whatsmeow_lid_map (lid, pn) VALUES ('77', '11'), ('78', '12')`); err != nil {
			t.Fatal(err)
		}
		s := c.ForAccount(types.NewJID("1000", types.DefaultUserServer))
		odd := types.NewJID(`q"u\o`+"\x01te", types.HiddenUserServer)
		pn := types.NewJID("11", types.DefaultUserServer)
		writes := []TokenWrite{
			{Contact: odd, Token: []byte{0, 1, 2, 0xff}, TokenTS: 100},
			{Contact: pn, Token: []byte("pn"), TokenTS: 50, SenderTS: 60},
			{Contact: types.NewJID("79", types.HiddenUserServer), Token: []byte("x"), TokenTS: 10},
		}
		applied, err := s.PutTokens(ctx, writes...)
		if err != nil {
			t.Fatal(err)
		}
		// Without sender timestamps (the other upsert), one older, one newer.
		applied2, err := s.PutTokens(ctx, TokenWrite{Contact: odd, Token: []byte("older"), TokenTS: 90}, TokenWrite{Contact: pn, Token: []byte("pn2"), TokenTS: 60})
		if err != nil {
			t.Fatal(err)
		}
		mended, err := s.MendHistoryTimestamps(ctx, HistoryMend{Contact: pn, Token: []byte("pn2"), WrongTS: 60, RightTS: 40},
			HistoryMend{Contact: odd, Token: []byte("nope"), WrongTS: 100, RightTS: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.PutWhatsmeowTokens(ctx, writes...); err != nil {
			t.Fatal(err)
		}
		held := map[types.JID]bool{}
		lids, err := s.LIDsForPNs(ctx, []types.JID{pn, types.NewJID("12", types.DefaultUserServer), types.NewJID("13", types.DefaultUserServer)}, held)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := s.LIDsForPNs(ctx, []types.JID{pn, types.NewJID("13", types.DefaultUserServer)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := s.GetMany(ctx, odd, pn, types.NewJID("79", types.HiddenUserServer))
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(rows, func(a, b *Entry) int { return compareStrings(a.Contact.String(), b.Contact.String()) })
		var theirs []string
		err = dbutil.NewSimpleReflectRowIter[whatsmeowRow](db.Query(ctx, `SELECT their_jid, token, timestamp FROM whatsmeow_privacy_tokens ORDER BY their_jid`)).
			Iter(func(r *whatsmeowRow) (bool, error) {
				theirs = append(theirs, fmt.Sprintf("%s=%x@%d", r.Contact, r.Token, r.TS))
				return true, nil
			})
		if err != nil {
			t.Fatal(err)
		}
		var got string
		got += fmt.Sprintf("applied %v %v mended %v\n", applied, applied2, mended)
		for _, row := range rows {
			got += fmt.Sprintf("%s %x %d %d\n", row.Contact, row.Token, row.TokenTS, row.SenderTS)
		}
		keys := slices.SortedFunc(maps.Keys(held), func(a, b types.JID) int { return compareStrings(a.String(), b.String()) })
		for _, k := range keys {
			got += fmt.Sprintf("%s lid=%s held=%v\n", k, lids[k], held[k])
		}
		got += fmt.Sprintf("plain %v\nwhatsmeow %v\n", plain, theirs)
		results[mode] = got
	}
	if results[sqliteRowsJSON] != results[sqliteRowsValues] {
		t.Errorf("JSON rows:\n%s\nVALUES rows:\n%s", results[sqliteRowsJSON], results[sqliteRowsValues])
	}
	want := "applied [true true true] [false true] mended [true false]\n"
	if got := results[sqliteRowsJSON]; len(got) < len(want) || got[:len(want)] != want {
		t.Errorf("got\n%s\nwant it to start with\n%s", got, want)
	}
	t.Log(results[sqliteRowsJSON])
}

type whatsmeowRow struct {
	Contact string
	Token   []byte
	TS      int64
}

func (r *whatsmeowRow) Scan(row dbutil.Scannable) (*whatsmeowRow, error) {
	return dbutil.ValueOrErr(r, row.Scan(&r.Contact, &r.Token, &r.TS))
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
