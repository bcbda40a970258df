package sqlstore_test

import (
	"context"
	"errors"
	"testing"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/sqlstore"
)

// A contact no TEXT column of PostgreSQL can hold fails a batch on both
// databases alike, before any statement: nothing of it is written.
func TestUnstorableContactRefusedBeforeAnyStatement(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := newContainer(t, db).ForAccount(ourJID)
		for _, bad := range []types.JID{
			types.NewJID("1555\x00123", types.DefaultUserServer),
			types.NewJID("\xff77", types.HiddenUserServer),
		} {
			_, err := s.PutTokens(ctx,
				sqlstore.TokenWrite{Contact: aliceLID, Token: []byte("alice"), TokenTS: 5000},
				sqlstore.TokenWrite{Contact: bad, Token: []byte("bad"), TokenTS: 5000})
			if !errors.Is(err, sqlstore.ErrUnstorableContact) {
				t.Errorf("PutTokens with %q: %v, want ErrUnstorableContact", bad.String(), err)
			}
			err = s.PutSenderTimestamps(ctx, sqlstore.SenderWrite{Contact: aliceLID, TS: 5000}, sqlstore.SenderWrite{Contact: bad, TS: 5000})
			if !errors.Is(err, sqlstore.ErrUnstorableContact) {
				t.Errorf("PutSenderTimestamps with %q: %v, want ErrUnstorableContact", bad.String(), err)
			}
		}
		if entry := get(t, s, aliceLID); entry != nil {
			t.Errorf("a refused batch wrote %+v", entry)
		}
	})
}
