package sqlstore_test

import (
	"context"
	"testing"

	"go.mau.fi/util/dbutil"

	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/sqlstore"
)

// TestNewChatCapStore: the new-chat cap round-trips with every field (an
// unknown status included), a second write replaces the first, each
// account sees only its own row, and DeleteAccount removes it.
func TestNewChatCapStore(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		c := newContainer(t, db)
		ours, other := c.ForAccount(ourJID), c.ForAccount(otherJID)
		if got, err := ours.GetNewChatCap(ctx); err != nil || got != nil {
			t.Fatalf("before any write: %+v, %v", got, err)
		}
		first := sqlstore.NewChatCap{
			Status: "FIRST_WARNING", Total: 50, TotalKnown: true, Used: 27, UsedKnown: true,
			CycleStart: 1_770_000_000, CycleEnd: 1_772_592_000, ServerSent: 1_770_500_000,
			OTEStatus: "ELIGIBLE", MVStatus: "NOT_ACTIVE", Source: "query", FetchedAt: 1_770_500_001,
		}
		if err := ours.PutNewChatCap(ctx, first); err != nil {
			t.Fatal(err)
		}
		if got, err := ours.GetNewChatCap(ctx); err != nil || got == nil || *got != first {
			t.Fatalf("read back %+v, %v; want %+v", got, err, first)
		}
		second := sqlstore.NewChatCap{Status: "THIRD_WARNING", Source: "query", FetchedAt: 1_770_600_000}
		if err := ours.PutNewChatCap(ctx, second); err != nil {
			t.Fatal(err)
		}
		if got, err := ours.GetNewChatCap(ctx); err != nil || got == nil || *got != second {
			t.Fatalf("after the second write %+v, %v; want %+v", got, err, second)
		}
		if got, err := other.GetNewChatCap(ctx); err != nil || got != nil {
			t.Fatalf("another account sees %+v, %v", got, err)
		}
		accounts, err := c.Accounts(ctx)
		if err != nil || len(accounts) != 1 || accounts[0] != ourJID {
			t.Fatalf("accounts %v, %v: an account with only a new-chat cap is listed", accounts, err)
		}
		if err := c.DeleteAccount(ctx, ourJID); err != nil {
			t.Fatal(err)
		}
		if got, err := ours.GetNewChatCap(ctx); err != nil || got != nil {
			t.Fatalf("survived DeleteAccount: %+v, %v", got, err)
		}
	})
}
