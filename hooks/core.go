package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"golang.org/x/sync/singleflight"

	"github.com/tctoken/tctoken/sqlstore"
)

// DefaultCacheSize bounds the per-contact token cache.
const DefaultCacheSize = 4096

var (
	// ErrNotLoggedIn is returned by calls that need our account before pairing.
	ErrNotLoggedIn = errors.New("tctoken: the client is not logged in yet")
	// ErrNotBound means the plugin could not load its state for the account.
	ErrNotBound = errors.New("tctoken: account state not loaded")
)

// Config is how a bridge tunes the plugin. The zero value is usable.
type Config struct {
	// Log receives the plugin's logs. The zero logger discards them.
	Log zerolog.Logger
	// Now replaces the clock, for tests. Defaults to time.Now.
	Now func() time.Time
	// Defaults apply before the server's AB props are known. The zero
	// value means DefaultDefaults().
	Defaults *Defaults
	// PropOverrides force AB prop values locally (code -> value), over
	// whatever the server says. For debugging.
	PropOverrides map[int]string
	// CacheSize bounds the token cache (entries). Zero means DefaultCacheSize.
	CacheSize int
	// Recovery is what a 463 sets off; nil means DefaultRecovery().
	Recovery *Recovery
	// Observer receives counts for metrics; nil costs nothing.
	Observer Observer
	// OptionErr is an option that could not be applied (a metrics
	// registration); Enable returns it.
	OptionErr error
	// SaltBackfillInterval is how long a salt backfill attempt is
	// remembered; zero means DefaultSaltBackfillInterval.
	SaltBackfillInterval time.Duration
}

// Core is the plugin's machinery for one client: the store interposer, the
// event handlers and the background work.
type Core struct {
	cli       *whatsmeow.Client
	container *sqlstore.Container
	inner     store.PrivacyTokenStore
	log       zerolog.Logger
	now       func() time.Time

	defaults  Defaults
	overrides map[int]string
	recovery  Recovery
	metrics   observer
	// reissued remembers (contact, sender bucket) pairs a 463 reissued to.
	reissued *lru.Cache[reissueKey, struct{}]
	// backfillEvery is how long a salt backfill attempt is remembered.
	backfillEvery time.Duration
	backfillMu    sync.Mutex

	account   atomic.Pointer[accountState]
	loggedOut atomic.Bool  // set on LoggedOut, cleared by the next PairSuccess
	bindMu    sync.Mutex   // one bind at a time
	bindNext  atomic.Int64 // unix seconds before which a failed bind is not retried

	cache *lru.Cache[types.JID, *cachedEntry]
	// cacheMu orders "no write since my read began, so cache it" against
	// "a write happened, drop the entry", so a stale read is never cached.
	cacheMu  sync.Mutex
	writeGen uint64

	cstokens   *lru.Cache[types.JID, cstokenEntry]
	issuing    singleflight.Group
	issuer     issuance // the queue, the backoff and the in-flight set
	history    *lru.Cache[types.JID, historyFact]
	subscribed *lru.Cache[types.JID, types.JID]
	// First-contact LID lookups (lidlookup.go): one in flight per number,
	// and numbers without a LID remembered for a while.
	lidLookups  singleflight.Group
	unknownLIDs *ttlSet

	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
	bgMu     sync.Mutex // orders closing against bg.Add
	stop     chan struct{}
	closed   atomic.Bool // no new background work; the interposers pass through

	appState  *AppStateWatch
	handlerID uint32
	logOnce   sync.Map     // error kind -> struct{}: log a recurring failure once
	nextPrune atomic.Int64 // unix seconds; 0 = prune at the next chance
	connGen   atomic.Uint64

	// beforeTokenWrite, when set by a test, runs between the history-fact
	// check and the database write of every token batch, so that tests can
	// force the interleavings of whatsmeow's write and the history handler.
	beforeTokenWrite func(source string)
}

// accountState is everything bound to one logged-in device.
type accountState struct {
	jid    types.JID
	store  *sqlstore.Store
	salt   atomic.Pointer[[]byte]
	saltMu sync.Mutex // one salt change at a time: database, then memory
	ownLID atomic.Pointer[types.JID]
	policy atomic.Pointer[Policy]
	props  atomic.Pointer[sqlstore.PropsSnapshot]
	// nextPropsFetch (unix seconds) and refreshID live for the process:
	// every connect fetches anyway.
	nextPropsFetch atomic.Int64
	refreshID      atomic.Value // string
	// imported: whatsmeow's own tokens have been imported (see adopt.go);
	// until then cold reads also ask whatsmeow's store.
	imported  atomic.Bool
	importing atomic.Bool
	// bulkMu runs the import and a prune one at a time: an import that
	// overlapped a prune could copy back a token the prune had just
	// deleted, from whatsmeow's table where the write-through put it.
	bulkMu sync.Mutex
	// timelock is the reach-out timelock as last recorded; watch follows
	// acks for the pattern that points to one.
	timelock atomic.Pointer[TimelockState]
	watch    timelockWatch
}

type cachedEntry struct {
	token    []byte
	tokenTS  int64
	senderTS int64
	// stale: a write may have changed the rows since this was read; the
	// next use reads again, and falls back to this if the read fails.
	stale bool
}

// cstokenEntry is a computed cstoken and the salt it was computed with.
type cstokenEntry struct {
	salt  *[]byte
	token []byte
}

// historyFact remembers what a history sync said about a contact, so that
// whatsmeow's own write of the same token (with the sender timestamp filed
// as the token timestamp) can be corrected whenever it lands.
type historyFact struct {
	token    []byte
	tokenTS  int64
	senderTS int64
}

// New builds the core. It does not register anything; Attach does.
func New(cli *whatsmeow.Client, container *sqlstore.Container, cfg Config) *Core {
	cacheSize := cfg.CacheSize
	if cacheSize <= 0 {
		cacheSize = DefaultCacheSize
	}
	defaults := DefaultDefaults()
	if cfg.Defaults != nil {
		defaults = *cfg.Defaults
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	c := &Core{
		cli:       cli,
		container: container,
		inner:     cli.Store.PrivacyTokens,
		log:       cfg.Log,
		now:       now,
		defaults:  defaults,
		overrides: cfg.PropOverrides,
		recovery:  DefaultRecovery(),
		metrics:   observer{cfg.Observer},
	}
	if cfg.Recovery != nil {
		c.recovery = *cfg.Recovery
	}
	c.backfillEvery = cfg.SaltBackfillInterval
	if c.backfillEvery <= 0 {
		c.backfillEvery = DefaultSaltBackfillInterval
	}
	c.reissued, _ = lru.New[reissueKey, struct{}](cacheSize)
	c.cache, _ = lru.New[types.JID, *cachedEntry](cacheSize)
	c.history, _ = lru.New[types.JID, historyFact](cacheSize)
	c.subscribed, _ = lru.New[types.JID, types.JID](cacheSize)
	c.cstokens, _ = lru.New[types.JID, cstokenEntry](cacheSize)
	c.unknownLIDs = newUnknownLIDCache()
	c.bgCtx, c.bgCancel = context.WithCancel(context.Background())
	c.stop = make(chan struct{})
	return c
}

// Attach interposes on the client's privacy token store and registers the
// event handlers. If the client is already logged in, the account is bound
// now, which reads the salt and the AB props once.
func (c *Core) Attach(ctx context.Context) error {
	if c.cli.Store.ID != nil {
		if err := c.bind(ctx, *c.cli.Store.ID); err != nil {
			return err
		}
	}
	c.cli.Store.PrivacyTokens = (*TokenStore)(c)
	c.appState = &AppStateWatch{AppStateStore: c.cli.Store.AppState, core: c}
	c.cli.Store.AppState = c.appState
	c.attachSaltStore()
	if c.cli.Store.Container != nil {
		c.cli.Store.Container = &LogoutWatch{DeviceContainer: c.cli.Store.Container, core: c}
	}
	c.handlerID = c.cli.AddEventHandler(c.handleEvent)
	// Enabled on a client that is already online: its Connected event has
	// passed, so start what it would have started.
	if c.cli.IsLoggedIn() {
		c.handleEvent(&events.Connected{})
	}
	return nil
}

// closeGrace is how long Close lets in-flight work (an issuance IQ, a
// prune) finish before cancelling it.
const closeGrace = 5 * time.Second

// Close detaches the plugin and waits for its background work to finish,
// for at most twice closeGrace. The client's stores are not swapped back,
// because whatsmeow reads those fields without a lock while connected: the
// interposers stay in place and pass everything to whatsmeow's own stores
// from now on.
//
// Close may run on any goroutine, whatsmeow's event dispatch included:
// RemoveEventHandler would deadlock there (dispatch holds the handlers'
// lock), so the handler turns into a no-op at once and is removed by a
// goroutine that waits for the dispatch in progress to end.
func (c *Core) Close() {
	c.bgMu.Lock()
	c.closed.Store(true)
	c.bgMu.Unlock()
	go c.cli.RemoveEventHandler(c.handlerID)
	close(c.stop)
	done := make(chan struct{})
	go func() {
		c.bg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(closeGrace):
		c.bgCancel()
		select {
		case <-done:
		case <-time.After(closeGrace):
			c.log.Warn().Msg("tctoken background work still running after Close; it was cancelled and will end on its own")
		}
	}
	c.bgCancel()
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
	acc := &accountState{jid: jid, store: c.container.ForAccount(jid)}
	if lid := c.cli.Store.GetLID().ToNonAD(); !lid.IsEmpty() {
		acc.ownLID.Store(&lid)
	}
	salt, _, _, err := acc.store.GetSalt(ctx)
	if err != nil {
		return fmt.Errorf("load NCT salt for %s: %w", jid, err)
	}
	if len(salt) > 0 {
		acc.salt.Store(&salt)
	}
	props, err := acc.store.GetProps(ctx)
	if err != nil {
		return fmt.Errorf("load AB props for %s: %w", jid, err)
	}
	var values map[int]string
	if props != nil {
		acc.props.Store(props)
		values = props.Values
	}
	policy := ComputePolicy(c.defaults, values, c.overrides)
	acc.policy.Store(&policy)
	imported, err := acc.store.Imported(ctx)
	if err != nil {
		return fmt.Errorf("load the import status for %s: %w", jid, err)
	}
	acc.imported.Store(imported)
	timelock, err := acc.store.GetTimelock(ctx)
	if err != nil {
		return fmt.Errorf("load the reach-out timelock for %s: %w", jid, err)
	}
	state := timelockFromStored(timelock)
	acc.timelock.Store(&state)
	c.metrics.timelock(state.InForce(c.now()))
	c.forgetCache()
	c.account.Store(acc)
	c.startImport(acc)
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
func (c *Core) own() Own {
	var own Own
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

// resolve maps a contact to its LID (when known) and PN (when known), and the
// key its row lives under: the LID when known, else the PN.
func (c *Core) resolve(ctx context.Context, jid types.JID) (key, lid, pn types.JID) {
	jid = jid.ToNonAD()
	switch jid.Server {
	case types.HiddenUserServer:
		lid = jid
		if c.cli.Store.LIDs != nil {
			pn, _ = c.cli.Store.LIDs.GetPNForLID(ctx, jid)
		}
	case types.DefaultUserServer:
		pn = jid
		if c.cli.Store.LIDs != nil {
			var err error
			lid, err = c.cli.Store.LIDs.GetLIDForPN(ctx, jid)
			if err != nil {
				c.warnOnce("lid-lookup", err, "Failed to look up a contact's LID; using the phone number")
			}
		}
	default:
		return jid, types.EmptyJID, types.EmptyJID
	}
	lid, pn = lid.ToNonAD(), pn.ToNonAD()
	// A mapping that pairs a contact with our own account (a hostile
	// history blob can store one) is ignored, both ways: a contact never
	// resolves to us, nor we to a contact.
	own := c.own()
	if isOwn := own.Is(jid); own.Is(lid) != isOwn {
		lid = types.EmptyJID
	} else if own.Is(pn) != isOwn {
		pn = types.EmptyJID
	}
	if !lid.IsEmpty() {
		return lid, lid, pn
	}
	return pn, lid, pn
}

// storageKeys returns, for each JID, the key its row is stored under: a LID
// is its own key, and a PN maps to its LID when whatsmeow knows it, else
// stays. It asks whatsmeow's LID map once for all the PNs, through the batch
// call, which caches no negative answers: ingesting a million tokens must
// not fill whatsmeow's never-evicting cache with "no LID" entries, as one
// GetLIDForPN (or GetPNForLID) per token did.
func (c *Core) storageKeys(ctx context.Context, jids []types.JID) []types.JID {
	keys := make([]types.JID, len(jids))
	var pns []types.JID
	for i, jid := range jids {
		keys[i] = jid.ToNonAD()
		if keys[i].Server == types.DefaultUserServer {
			pns = append(pns, keys[i])
		}
	}
	if len(pns) == 0 || c.cli.Store.LIDs == nil {
		return keys
	}
	lids, err := c.cli.Store.LIDs.GetManyLIDsForPNs(ctx, pns)
	if err != nil {
		c.warnOnce("lid-lookup", err, "Failed to look up contacts' LIDs; storing under the phone numbers")
		return keys
	}
	own := c.own()
	for i, key := range keys {
		// As in resolve: a contact's number never maps to our own LID.
		if lid := lids[key].ToNonAD(); key.Server == types.DefaultUserServer && !lid.IsEmpty() && own.Is(lid) == own.Is(key) {
			keys[i] = lid
		}
	}
	return keys
}

// contactView is what the plugin knows about one contact at one moment.
type contactView struct {
	acc          *accountState
	key, lid, pn types.JID
	entry        *cachedEntry
}

// view resolves a contact and reads its merged entry: at most one database
// read when not cached, none when cached.
func (c *Core) view(ctx context.Context, jid types.JID) (v contactView, err error) {
	if v.acc, err = c.acct(ctx); err != nil {
		return v, err
	}
	if lid := jid.ToNonAD(); lid.Server == types.HiddenUserServer {
		// A LID is its own key: a cached entry needs no trip through
		// whatsmeow's LID map (the PN only matters to a cold read).
		if entry, ok := c.cache.Get(lid); ok && !entry.stale {
			v.key, v.lid, v.entry = lid, lid, entry
			return v, nil
		}
	}
	v.key, v.lid, v.pn = c.resolve(ctx, jid)
	v.entry, err = c.lookup(ctx, v.acc, v.key, v.lid, v.pn)
	return v, err
}

// lookup returns the merged entry for a contact. A row filed under the PN
// before the LID was known still counts.
func (c *Core) lookup(ctx context.Context, acc *accountState, key, lid, pn types.JID) (*cachedEntry, error) {
	cached, isCached := c.cache.Get(key)
	if isCached && !cached.stale {
		return cached, nil
	}
	c.cacheMu.Lock()
	gen := c.writeGen
	c.cacheMu.Unlock()
	candidates := []types.JID{key}
	if !pn.IsEmpty() && pn != key {
		candidates = append(candidates, pn)
	}
	if !lid.IsEmpty() && lid != key {
		candidates = append(candidates, lid)
	}
	rows, err := acc.store.GetMany(ctx, candidates...)
	if err != nil {
		c.metrics.dbError("read_tokens")
		if isCached {
			// The database is failing: the last entry known beats none.
			// Expiry is still judged by the clock when it is used.
			c.warnOnce("read", err, "Failed to read privacy tokens; using the last known ones")
			return cached, nil
		}
		c.warnOnce("read", err, "Failed to read privacy tokens; going on without them")
		return nil, fmt.Errorf("read token for %s: %w", key, err)
	}
	c.clearWarned("read")
	if inner := c.innerRow(ctx, acc, key); inner != nil {
		rows = append(rows, inner)
	}
	entry := mergeRows(rows)
	// A write that committed while this read ran may have changed the row:
	// cache only what no write can have made stale.
	c.cacheMu.Lock()
	if c.writeGen == gen {
		c.cache.Add(key, entry)
	}
	c.cacheMu.Unlock()
	return entry, nil
}

// mergeRows merges the rows of one contact (under its LID and its PN) into
// one entry: the newest token, the newest sender timestamp. A row that holds
// the same token bytes as another but with our sender timestamp as its token
// timestamp is whatsmeow 2025-12's history-sync mistake (filed under the PN
// while the plugin wrote the LID row right): its timestamp is never
// preferred, or an expired token would look as new as our last issuance.
func mergeRows(rows []*sqlstore.Entry) *cachedEntry {
	entry := &cachedEntry{}
	for _, row := range rows {
		entry.senderTS = max(entry.senderTS, row.SenderTS)
	}
	misfiled := func(row *sqlstore.Entry) bool {
		if entry.senderTS == 0 || row.TokenTS != entry.senderTS {
			return false
		}
		for _, other := range rows {
			if other != row && other.TokenTS != row.TokenTS && bytes.Equal(other.Token, row.Token) {
				return true
			}
		}
		return false
	}
	for _, row := range rows {
		if len(row.Token) > 0 && row.TokenTS >= entry.tokenTS && !misfiled(row) {
			entry.token, entry.tokenTS = row.Token, row.TokenTS
		}
	}
	return entry
}

// wrote must follow every write whose effect the cache cannot apply itself
// (or that may have failed halfway): in-flight reads will not cache what
// they read, and the cached entries of the keys are marked stale. A stale
// entry is read again on its next use, and still served if that read fails,
// so a database outage never costs a contact the token last known for it.
func (c *Core) wrote(keys ...types.JID) {
	c.cacheMu.Lock()
	defer c.cacheMu.Unlock()
	c.writeGen++
	for _, key := range keys {
		if entry, ok := c.cache.Peek(key); ok && !entry.stale {
			stale := *entry
			stale.stale = true
			c.cache.Add(key, &stale)
		}
	}
}

// forgetCache empties the cache: the account it belonged to is gone.
func (c *Core) forgetCache() {
	c.cacheMu.Lock()
	defer c.cacheMu.Unlock()
	c.writeGen++
	c.cache.Purge()
}

// wroteTokens applies committed token writes to the cached entries in place,
// so a send right after a new token arrived needs no read. Entries are
// replaced, never mutated: readers hold them without a lock.
func (c *Core) wroteTokens(writes []sqlstore.TokenWrite) {
	c.cacheMu.Lock()
	defer c.cacheMu.Unlock()
	c.writeGen++
	for _, write := range writes {
		if entry, ok := c.cache.Peek(write.Contact); ok && write.TokenTS >= entry.tokenTS {
			updated := *entry
			updated.token, updated.tokenTS = write.Token, write.TokenTS
			c.cache.Add(write.Contact, &updated)
		}
	}
}

// prunedCache applies a committed prune to the cached entries, as the
// store's Prune applied it to the rows: expired tokens go, expired sender
// timestamps go.
func (c *Core) prunedCache(recvCutoff, sendCutoff int64) {
	c.cacheMu.Lock()
	defer c.cacheMu.Unlock()
	c.writeGen++
	for _, key := range c.cache.Keys() {
		entry, ok := c.cache.Peek(key)
		if !ok {
			continue
		}
		tokenExpired := len(entry.token) > 0 && (entry.tokenTS == 0 || entry.tokenTS < recvCutoff)
		senderExpired := entry.senderTS > 0 && entry.senderTS < sendCutoff
		if !tokenExpired && !senderExpired {
			continue
		}
		updated := *entry
		if tokenExpired {
			updated.token, updated.tokenTS = nil, 0
		}
		if senderExpired && len(updated.token) == 0 {
			updated.senderTS = 0
		}
		c.cache.Add(key, &updated)
	}
}

// wroteSenderTimestamp applies a committed sender timestamp to the cached
// entries in place; the stored one only ever moves forward, and so does this.
func (c *Core) wroteSenderTimestamp(ts int64, keys ...types.JID) {
	c.cacheMu.Lock()
	defer c.cacheMu.Unlock()
	c.writeGen++
	for _, key := range keys {
		if entry, ok := c.cache.Peek(key); ok && ts > entry.senderTS {
			updated := *entry
			updated.senderTS = ts
			c.cache.Add(key, &updated)
		}
	}
}

// warnOnce logs a recurring failure once per kind, then at debug level, so
// that a database outage does not flood the bridge's logs on every send.
func (c *Core) warnOnce(kind string, err error, msg string) {
	if _, seen := c.logOnce.LoadOrStore(kind, struct{}{}); seen {
		c.log.Debug().Err(err).Str("kind", kind).Msg(msg)
		return
	}
	c.log.Warn().Err(err).Str("kind", kind).Msg(msg)
}

// clearWarned re-arms warnOnce for a kind after it recovered.
func (c *Core) clearWarned(kind string) { c.logOnce.Delete(kind) }

// goBackground runs fn in the background, tied to the core's lifetime.
func (c *Core) goBackground(fn func(ctx context.Context)) {
	c.bgMu.Lock()
	defer c.bgMu.Unlock()
	if c.closed.Load() {
		return
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		defer func() {
			if p := recover(); p != nil {
				c.log.Error().Any("panic", p).Msg("tctoken background task panicked")
			}
		}()
		fn(c.bgCtx)
	}()
}

// Get returns the merged stored entry for a contact, or nil.
func (c *Core) Get(ctx context.Context, jid types.JID) (*sqlstore.Entry, error) {
	v, err := c.view(ctx, jid)
	if err != nil {
		return nil, err
	}
	if len(v.entry.token) == 0 && v.entry.senderTS == 0 {
		return nil, nil
	}
	return &sqlstore.Entry{Contact: v.key, Token: v.entry.token, TokenTS: v.entry.tokenTS, SenderTS: v.entry.senderTS}, nil
}

// Contacts lists the contacts we hold a token from.
func (c *Core) Contacts(ctx context.Context) ([]types.JID, error) {
	acc, err := c.acct(ctx)
	if err != nil {
		return nil, err
	}
	return acc.store.Contacts(ctx)
}

// Closed reports whether Close was called: the interposer then passes every
// call through to whatsmeow's own store.
func (s *TokenStore) Closed() bool { return s.closed.Load() }
