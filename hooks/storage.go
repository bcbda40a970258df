package hooks

import (
	"context"

	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/sqlstore"
)

// The plugin's storage of one account, as small interfaces in the style of
// whatsmeow's store/store.go: each concern asks for the few methods it
// uses, and AccountStore composes them, so that a test can put a failing
// or counting store in front of the SQL one in one line (Config.WrapStore).
// *sqlstore.Store implements them all.
//
// Every method that writes must be wrapped by fencedStore (fence.go), or a
// logout could delete the account's rows while the write brings some back;
// TestFenceWrapsEveryWrite holds the two lists together.

// tokenReader reads the contacts' tokens and our sender timestamps.
type tokenReader interface {
	GetMany(ctx context.Context, contacts ...types.JID) ([]*sqlstore.Entry, error)
	Contacts(ctx context.Context) ([]types.JID, error)
}

// tokenWriter stores the contacts' tokens and our sender timestamps.
type tokenWriter interface {
	PutTokens(ctx context.Context, writes ...sqlstore.TokenWrite) ([]bool, error)
	SetSenderTimestamps(ctx context.Context, ts int64, contacts ...types.JID) error
	PutSenderTimestamps(ctx context.Context, writes ...sqlstore.SenderWrite) error
}

// historyMender corrects the token timestamps whatsmeow 2025-12 filed from
// a history sync.
type historyMender interface {
	MendHistoryTimestamp(ctx context.Context, contact types.JID, token []byte, wrongTS, rightTS int64) (bool, error)
	MendHistoryTimestamps(ctx context.Context, mends ...sqlstore.HistoryMend) ([]bool, error)
}

// tokenUpkeep is the work over the whole table: pruning, and the pass that
// takes over whatsmeow's own table.
type tokenUpkeep interface {
	Prune(ctx context.Context, recvCutoff, sendCutoff int64) (int64, error)
	ImportWhatsmeowTokens(ctx context.Context, recvCutoff int64, write func(ctx context.Context, batch sqlstore.ImportBatch) error) (sqlstore.ImportResult, error)
}

// transactions is what the store can do when whatsmeow's store shares its
// database (see shared.go): one transaction for both.
type transactions interface {
	InTxn(ctx context.Context, fn func(ctx context.Context) error) error
	InTransaction(ctx context.Context) bool
	SharesTransactions(ctx context.Context, read func(ctx context.Context, contact types.JID) ([]byte, error)) (bool, error)
}

// whatsmeowTable reads and writes whatsmeow's own token table in the shared
// database: a read that follows whatsmeow's LID map, and the write-through
// of tokens and of sender timestamps.
type whatsmeowTable interface {
	GetByLID(ctx context.Context, lid types.JID) (pn types.JID, entries []*sqlstore.Entry, err error)
	LIDsForPNs(ctx context.Context, pns []types.JID, held map[types.JID]bool) (map[types.JID]types.JID, error)
	PutWhatsmeowTokens(ctx context.Context, writes ...sqlstore.TokenWrite) error
	SetWhatsmeowSenderTimestamps(ctx context.Context, ts int64, contacts ...types.JID) (int64, error)
}

// saltStorage holds the NCT salt and where it came from.
type saltStorage interface {
	GetSalt(ctx context.Context) (salt []byte, source sqlstore.SaltSource, found bool, err error)
	SetAppStateSalt(ctx context.Context, salt []byte) error
	RemoveAppStateSalt(ctx context.Context) error
	SetHistorySalt(ctx context.Context, salt []byte) (applied bool, err error)
}

// propsStorage holds the server's AB props.
type propsStorage interface {
	GetProps(ctx context.Context) (*sqlstore.PropsSnapshot, error)
	ReplaceProps(ctx context.Context, snap sqlstore.PropsSnapshot) error
	MergeProps(ctx context.Context, snap sqlstore.PropsSnapshot) error
}

// timelockStorage holds the reach-out timelock.
type timelockStorage interface {
	GetTimelock(ctx context.Context) (*sqlstore.Timelock, error)
	PutTimelock(ctx context.Context, tl sqlstore.Timelock) error
}

// backfillStorage holds the salt backfill's last attempt.
type backfillStorage interface {
	GetSaltBackfill(ctx context.Context) (*sqlstore.SaltBackfill, error)
	PutSaltBackfill(ctx context.Context, at int64, result string) error
}

// newChatCapStorage holds the new-chat cap.
type newChatCapStorage interface {
	GetNewChatCap(ctx context.Context) (*sqlstore.NewChatCap, error)
	PutNewChatCap(ctx context.Context, nc sqlstore.NewChatCap) error
}

// AccountStore is everything the plugin keeps for one account.
type AccountStore interface {
	tokenReader
	tokenWriter
	historyMender
	tokenUpkeep
	transactions
	whatsmeowTable
	saltStorage
	propsStorage
	timelockStorage
	backfillStorage
	newChatCapStorage
}

var _ AccountStore = (*sqlstore.Store)(nil)

// accountStore opens the store of one account, through Config.WrapStore
// when a test set one.
func (c *Core) accountStore(jid types.JID) AccountStore {
	var store AccountStore = c.container.ForAccount(jid)
	if c.wrapStore != nil {
		store = c.wrapStore(store)
	}
	return store
}
