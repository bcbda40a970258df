package hooks

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/sqlstore"
)

// The account the plugin is bound to: its state, binding it, our own JIDs.

// accountLifecycle is the account the core serves, from bind to logout,
// and what the core put in front of the device's stores for it.
type accountLifecycle struct {
	account   atomic.Pointer[accountState]
	loggedOut atomic.Bool  // set on LoggedOut, cleared by the next PairSuccess
	bindMu    sync.Mutex   // one bind at a time
	bindNext  atomic.Int64 // unix seconds before which a failed bind is not retried
	wrapStore func(AccountStore) AccountStore
	appState  *appStateWatch
	handlerID uint32
	nextPrune atomic.Int64 // unix seconds; 0 = prune at the next chance
	connGen   atomic.Uint64
}

// accountState is everything bound to one logged-in device.
type accountState struct {
	jid   types.JID
	store AccountStore // every write inside fence
	// fence keeps the account's writers out of a logout's deletion.
	fence  *accountFence
	salt   atomic.Pointer[[]byte]
	saltMu sync.Mutex // one salt change at a time: database, then memory
	// saltSeq is the order (Core.saltSeq) of the last app-state salt
	// change applied, under saltMu.
	saltSeq uint64
	ownLID  atomic.Pointer[types.JID]
	policy  atomic.Pointer[Policy]
	props   atomic.Pointer[sqlstore.PropsSnapshot]
	// nextPropsFetch (unix seconds) and refreshID live for the process:
	// every connect fetches anyway.
	nextPropsFetch atomic.Int64
	refreshID      atomic.Value // string
	// imported: this bind's pass over whatsmeow's own tokens has finished
	// (see adopt.go); until then cold reads also ask whatsmeow's store.
	// behind: a token went to whatsmeow's store alone since that pass
	// began (the plugin's store failed), so the next connect runs another.
	imported  atomic.Bool
	importing atomic.Bool
	behind    atomic.Bool
	// bulkMu runs the import and a prune one at a time: an import that
	// overlapped a prune could copy back a token the prune had just
	// deleted, from whatsmeow's table where the write-through put it.
	bulkMu sync.Mutex
	// timelock is the reach-out timelock as last recorded; watch follows
	// acks for the pattern that points to one.
	timelock atomic.Pointer[TimelockState]
	watch    timelockWatch
	// newChatCap is the new-chat cap as last received (newchatcap.go).
	newChatCap accountCap
	// join: whether whatsmeow's token store joins the plugin's
	// transactions (see shared.go).
	join atomic.Pointer[joinProbe]
}

// bindRetry is how long a failed bind waits before the next attempt, so
// that a broken database does not cost every send two extra reads.
const bindRetry = 30 * time.Second

// bind loads the per-account state: the salt and the cached AB props.
func (c *Core) bind(ctx context.Context, jid types.JID) error {
	c.bindMu.Lock()
	defer c.bindMu.Unlock()
	if current := c.account.Load(); current != nil && current.jid == jid {
		return nil
	}
	acc := &accountState{jid: jid, fence: newAccountFence()}
	acc.store = fencedStore{AccountStore: c.accountStore(jid), fence: acc.fence}
	if lid := c.cli.Store.GetLID().ToNonAD(); !lid.IsEmpty() {
		acc.ownLID.Store(&lid)
	}
	salt, _, _, err := acc.store.GetSalt(ctx)
	if err != nil {
		return fmt.Errorf("load NCT salt for %s: %w: %w", jid, ErrDatabase, err)
	}
	if len(salt) > 0 {
		acc.salt.Store(&salt)
	}
	props, err := acc.store.GetProps(ctx)
	if err != nil {
		return fmt.Errorf("load AB props for %s: %w: %w", jid, ErrDatabase, err)
	}
	var values map[int]string
	if props != nil {
		acc.props.Store(props)
		values = props.Values
	}
	policy := ComputePolicy(c.defaults, values, c.overrides)
	acc.policy.Store(&policy)
	timelock, err := acc.store.GetTimelock(ctx)
	if err != nil {
		return fmt.Errorf("load the reach-out timelock for %s: %w: %w", jid, ErrDatabase, err)
	}
	state := TimelockFromStored(timelock)
	acc.timelock.Store(&state)
	c.metrics.timelock(state.InForce(c.now()))
	c.loadNewChatCap(ctx, acc)
	c.forgetCache()
	c.account.Store(acc)
	c.startImport(acc)
	c.goBackground(func(ctx context.Context) { c.probeJoin(ctx, acc) })
	return nil
}

// acct returns the bound account, binding it lazily if the client paired
// since Attach. A failed bind is logged once and not retried for a while.
func (c *Core) acct(ctx context.Context) (*accountState, error) {
	if acc := c.account.Load(); acc != nil {
		return acc, nil
	}
	id := c.storeID()
	if id == nil {
		return nil, ErrNotLoggedIn
	}
	if c.nowUnix() < c.bindNext.Load() {
		return nil, ErrNotBound
	}
	if err := c.bind(ctx, *id); err != nil {
		c.bindNext.Store(c.now().Add(bindRetry).Unix())
		c.metrics.dbError("bind")
		c.warnOnce("bind", err, "Failed to load the plugin's account state; retrying later")
		return nil, fmt.Errorf("%w: %w", ErrNotBound, err)
	}
	c.clearWarned("bind")
	return c.account.Load(), nil
}

// Policy is the configuration in force now.
func (c *Core) Policy() Policy {
	if acc := c.account.Load(); acc != nil {
		return *acc.policy.Load()
	}
	return ComputePolicy(c.defaults, nil, c.overrides)
}

func (c *Core) nowUnix() int64 { return c.now().Unix() }

// own is our account in both forms. Both are read from the device store
// once and kept, because whatsmeow clears those fields without a lock when
// the session is deleted.
func (c *Core) own() ownJIDs {
	var own ownJIDs
	if acc := c.account.Load(); acc != nil {
		own.PN = acc.jid.ToNonAD()
		if lid := acc.ownLID.Load(); lid != nil {
			own.LID = *lid
			return own
		}
	} else if id := c.storeID(); id != nil {
		own.PN = id.ToNonAD()
	}
	if c.loggedOut.Load() {
		return own
	}
	own.LID = c.cli.Store.GetLID().ToNonAD()
	if acc := c.account.Load(); acc != nil && !own.LID.IsEmpty() {
		// A copy: taking own's address would move it to the heap on every
		// call, the send path's included.
		lid := own.LID
		acc.ownLID.Store(&lid)
	}
	return own
}

// storeID reads the device's JID, unless the device logged out: whatsmeow
// clears the field from another goroutine without a lock while deleting the
// session, so after a logout the plugin stops looking until a new pairing.
func (c *Core) storeID() *types.JID {
	if c.loggedOut.Load() {
		return nil
	}
	return c.cli.Store.ID
}
