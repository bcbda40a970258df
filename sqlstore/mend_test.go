package sqlstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/sqlstore"
)

// countingLog counts the statements that reach the database.
type countingLog struct {
	dbutil.DatabaseLogger
	n atomic.Int64
}

func (l *countingLog) QueryTiming(ctx context.Context, method, query string, args []any, nrows int, d time.Duration, err error) {
	if method != "EndRows" && method != "<Transaction>" {
		l.n.Add(1)
	}
	l.DatabaseLogger.QueryTiming(ctx, method, query, args, nrows, d, err)
}

// A history blob's mends are one statement, however many conversations it
// has (issue 20: one statement each cost a round trip per conversation),
// and each mend still acts only on a row holding exactly its token at its
// wrong timestamp, and says so.
func TestMendHistoryTimestampsOneStatement(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		log := &countingLog{DatabaseLogger: db.Log}
		db.Log = log
		s := newContainer(t, db).ForAccount(ourJID)
		const n = 1500
		contact := func(i int) types.JID { return types.NewJID(fmt.Sprint(5000+i), types.DefaultUserServer) }
		var writes []sqlstore.TokenWrite
		var mends []sqlstore.HistoryMend
		for i := range n {
			// Every third row holds what whatsmeow filed (the token at the
			// sender timestamp 500), every third another token, and every
			// third contact has no row at all.
			switch i % 3 {
			case 0:
				writes = append(writes, sqlstore.TokenWrite{Contact: contact(i), Token: []byte(fmt.Sprint("t", i)), TokenTS: 500})
			case 1:
				writes = append(writes, sqlstore.TokenWrite{Contact: contact(i), Token: []byte("other"), TokenTS: 500})
			}
			mends = append(mends, sqlstore.HistoryMend{Contact: contact(i), Token: []byte(fmt.Sprint("t", i)), WrongTS: 500, RightTS: 300})
		}
		put(t, s, writes...)
		// The same mend twice changes the row once; a mend whose timestamp
		// is not the stored one, and one without a token, change nothing.
		mends = append(mends,
			sqlstore.HistoryMend{Contact: contact(0), Token: []byte("t0"), WrongTS: 500, RightTS: 300},
			sqlstore.HistoryMend{Contact: contact(3), Token: []byte("t3"), WrongTS: 499, RightTS: 301},
			sqlstore.HistoryMend{Contact: contact(6), WrongTS: 500, RightTS: 300},
		)
		before := log.n.Load()
		changed, err := s.MendHistoryTimestamps(ctx, mends...)
		if err != nil {
			t.Fatal(err)
		}
		if got := log.n.Load() - before; got != 1 {
			t.Errorf("%d mends took %d statements, want 1", len(mends), got)
		}
		for i := range n {
			if want := i%3 == 0; changed[i] != want {
				t.Errorf("mend of %s: changed = %v, want %v", contact(i), changed[i], want)
			}
		}
		for _, extra := range changed[n:] {
			if extra {
				t.Errorf("a repeated or non-matching mend reported a change: %v", changed[n:])
			}
		}
		for i := range 6 {
			row := get(t, s, contact(i))
			switch i % 3 {
			case 0:
				assertEntry(t, row, sqlstore.Entry{Contact: contact(i), Token: []byte(fmt.Sprint("t", i)), TokenTS: 300})
			case 1:
				assertEntry(t, row, sqlstore.Entry{Contact: contact(i), Token: []byte("other"), TokenTS: 500})
			case 2:
				if row != nil {
					t.Errorf("a mend made a row for %s", contact(i))
				}
			}
		}
		// A negative timestamp fails the batch before anything is written.
		before = log.n.Load()
		_, err = s.MendHistoryTimestamps(ctx,
			sqlstore.HistoryMend{Contact: contact(4), Token: []byte("other"), WrongTS: 500, RightTS: 200},
			sqlstore.HistoryMend{Contact: contact(9), Token: []byte("t9"), WrongTS: 300, RightTS: -1})
		if err == nil || !strings.Contains(err.Error(), "negative") || log.n.Load() != before {
			t.Errorf("negative timestamp: err %v, %d statements", err, log.n.Load()-before)
		}
		assertEntry(t, get(t, s, contact(4)), sqlstore.Entry{Contact: contact(4), Token: []byte("other"), TokenTS: 500})
	})
}
