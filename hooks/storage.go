package hooks

import (
	"context"

	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/sqlstore"
)

// AccountStore is everything the plugin keeps for one account, as the core
// uses it: a small interface, as whatsmeow's store/store.go has them, so
// that a test can put a failing or counting store in front of the SQL one in
// one line (Config.WrapStore). *sqlstore.Store implements it.
type AccountStore interface {
	TokenStorage
	SaltStorage
	PropsStorage
	DiagnosisStorage
	SharedStorage
}

// TokenStorage holds the contacts' tokens and our sender timestamps.
type TokenStorage interface {
	GetMany(ctx context.Context, contacts ...types.JID) ([]*sqlstore.Entry, error)
	Contacts(ctx context.Context) ([]types.JID, error)
	PutTokens(ctx context.Context, writes ...sqlstore.TokenWrite) ([]bool, error)
	SetSenderTimestamps(ctx context.Context, ts int64, contacts ...types.JID) error
	PutSenderTimestamps(ctx context.Context, writes ...sqlstore.SenderWrite) error
	MendHistoryTimestamp(ctx context.Context, contact types.JID, token []byte, wrongTS, rightTS int64) (bool, error)
	MendHistoryTimestamps(ctx context.Context, mends ...sqlstore.HistoryMend) ([]bool, error)
	Prune(ctx context.Context, recvCutoff, sendCutoff int64) (int64, error)
	ImportWhatsmeowTokens(ctx context.Context, recvCutoff int64, write func(ctx context.Context, batch sqlstore.ImportBatch) error) (sqlstore.ImportResult, error)
}

// SharedStorage is what the store can do when whatsmeow's store shares its
// database (see shared.go): one transaction for both, and a read that
// follows whatsmeow's LID map.
type SharedStorage interface {
	InTxn(ctx context.Context, fn func(ctx context.Context) error) error
	InTransaction(ctx context.Context) bool
	SharesTransactions(ctx context.Context, read func(ctx context.Context, contact types.JID) ([]byte, error)) (bool, error)
	GetByLID(ctx context.Context, lid types.JID) (pn types.JID, entries []*sqlstore.Entry, err error)
	LIDsForPNs(ctx context.Context, pns []types.JID) (map[types.JID]types.JID, error)
	PutWhatsmeowTokens(ctx context.Context, writes ...sqlstore.TokenWrite) error
}

// SaltStorage holds the NCT salt and where it came from.
type SaltStorage interface {
	GetSalt(ctx context.Context) (salt []byte, source sqlstore.SaltSource, found bool, err error)
	SetAppStateSalt(ctx context.Context, salt []byte) error
	RemoveAppStateSalt(ctx context.Context) error
	SetHistorySalt(ctx context.Context, salt []byte) (applied bool, err error)
}

// PropsStorage holds the server's AB props.
type PropsStorage interface {
	GetProps(ctx context.Context) (*sqlstore.PropsSnapshot, error)
	ReplaceProps(ctx context.Context, snap sqlstore.PropsSnapshot) error
	MergeProps(ctx context.Context, snap sqlstore.PropsSnapshot) error
}

// DiagnosisStorage holds the reach-out timelock and the salt backfill's
// last attempt.
type DiagnosisStorage interface {
	GetTimelock(ctx context.Context) (*sqlstore.Timelock, error)
	PutTimelock(ctx context.Context, tl sqlstore.Timelock) error
	GetSaltBackfill(ctx context.Context) (*sqlstore.SaltBackfill, error)
	PutSaltBackfill(ctx context.Context, at int64, result string) error
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
