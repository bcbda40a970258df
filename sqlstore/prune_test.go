package sqlstore_test

import (
	"context"
	"fmt"
	"testing"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/sqlstore"
)

// A prune larger than one batch finishes every batch, and keeps what it
// must: valid tokens, and rows whose sender timestamp is still valid.
func TestPruneInBatches(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := newContainer(t, db).ForAccount(ourJID)
		const expired = sqlstore.PruneBatchSize*2 + 17
		writes := make([]sqlstore.TokenWrite, 0, expired+3)
		for i := range expired {
			writes = append(writes, sqlstore.TokenWrite{Contact: types.NewJID(fmt.Sprintf("%015d", i), types.HiddenUserServer), Token: []byte("old"), TokenTS: 100})
		}
		writes = append(writes,
			sqlstore.TokenWrite{Contact: aliceLID, Token: []byte("valid"), TokenTS: 5000},
			sqlstore.TokenWrite{Contact: bobPN, Token: []byte("old-but-issued"), TokenTS: 100})
		put(t, s, writes...)
		if err := s.SetSenderTimestamps(ctx, 4000, bobPN); err != nil {
			t.Fatal(err)
		}
		onlySender := make([]types.JID, 0, sqlstore.PruneBatchSize+5)
		for i := range sqlstore.PruneBatchSize + 5 {
			onlySender = append(onlySender, types.NewJID(fmt.Sprintf("9%014d", i), types.HiddenUserServer))
		}
		if err := s.SetSenderTimestamps(ctx, 50, onlySender...); err != nil {
			t.Fatal(err)
		}
		removed, err := s.Prune(ctx, 1000, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if removed != expired+1 {
			t.Fatalf("removed %d tokens, want %d", removed, expired+1)
		}
		assertEntry(t, get(t, s, aliceLID), sqlstore.Entry{Contact: aliceLID, Token: []byte("valid"), TokenTS: 5000})
		assertEntry(t, get(t, s, bobPN), sqlstore.Entry{Contact: bobPN, SenderTS: 4000})
		var left int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM tctoken_tokens WHERE our_jid=$1`, ourJID.String()).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left != 2 {
			t.Fatalf("%d rows left, want alice's and bob's", left)
		}
	})
}
