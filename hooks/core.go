package hooks

import (
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

	"github.com/tctoken/tctoken/internal/compat"
	"github.com/tctoken/tctoken/sqlstore"
)

// defaultCacheSize bounds the per-contact token cache.
const defaultCacheSize = 4096

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
	// WrapStore, when set, wraps each account's store: tests put a failing
	// or counting store in front of the SQL one with it.
	WrapStore func(AccountStore) AccountStore
	// NewChatCapQueryID replaces the new-chat cap query's id; "" means the
	// current one, falling back to the one before it (newchatcap.go).
	NewChatCapQueryID string
}

// Core is the plugin's machinery for one client: the store interposer, the
// event handlers and the background work. It wires the concerns, each a
// type with its own fields, declared in the file of its steps: received
// tokens (ingest.go), issuance (issuance.go), salt and cstoken (salt.go),
// AB props and timing (abprops.go), recovery (recovery.go), the account's
// lifecycle (account.go) and the background work (below). Diagnosis and
// timelock state is per account (accountState, timelock.go).
type Core struct {
	cli *whatsmeow.Client
	// compat is what this whatsmeow does by itself, detected at New: every
	// difference between whatsmeow 2025-12 and the newer one is asked there.
	compat    *compat.Features
	container *sqlstore.Container
	log       zerolog.Logger
	now       func() time.Time
	metrics   observer

	receivedTokens
	issuedTokens
	saltState
	propsState
	recoveryState
	accountLifecycle
	backgroundWork
	newChatCapping
}

// backgroundWork is the work the core runs besides the calls it gets, tied
// to its lifetime: Close ends it.
type backgroundWork struct {
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
	bgMu     sync.Mutex // orders closing against bg.Add
	stop     chan struct{}
	closed   atomic.Bool // no new background work; the interposers pass through
	logOnce  sync.Map    // error kind -> struct{}: log a recurring failure once
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
		cacheSize = defaultCacheSize
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
		compat:    compat.Detect(cli),
		container: container,
		log:       cfg.Log,
		now:       now,
		metrics:   observer{cfg.Observer},
	}
	c.defaults, c.overrides = defaults, cfg.PropOverrides
	c.wrapStore = cfg.WrapStore
	c.capQueryIDs = capQueryIDsFor(cfg.NewChatCapQueryID)
	c.recovery = DefaultRecovery()
	c.compat.Log(c.log)
	if cfg.Recovery != nil {
		c.recovery = *cfg.Recovery
	}
	c.backfillEvery = cfg.SaltBackfillInterval
	if c.backfillEvery <= 0 {
		c.backfillEvery = defaultSaltBackfillInterval
	}
	c.reissued, _ = lru.New[reissueKey, struct{}](cacheSize)
	c.cache, _ = lru.New[types.JID, *cachedEntry](cacheSize)
	c.history = newHistoryFacts(cacheSize)
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
	c.interpose()
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
	contacts, err := acc.store.Contacts(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the contacts with a token: %w: %w", ErrDatabase, err)
	}
	return contacts, nil
}

// Closed reports whether Close was called: the interposer then passes every
// call through to whatsmeow's own store.
func (s *TokenStore) Closed() bool { return s.core.closed.Load() }

// innerTokens boxes whatsmeow's own token store, so that it can be swapped
// atomically whatever its concrete type.
type innerTokens struct{ store.PrivacyTokenStore }

// innerStore is whatsmeow's own token store behind the interposer.
func (c *Core) innerStore() store.PrivacyTokenStore {
	if box := c.inner.Load(); box != nil {
		return box.PrivacyTokenStore
	}
	return nil
}

// interpose puts the plugin in front of the device's stores, and keeps it
// there: whatsmeow replaces all of a new device's stores with its SQL ones
// when pairing saves the device (before PairSuccess is dispatched), so the
// PairSuccess handler calls this again. Stores already interposed are left
// as they are.
func (c *Core) interpose() {
	st := c.cli.Store
	if current, ok := st.PrivacyTokens.(*TokenStore); !ok || current.core != c {
		c.inner.Store(&innerTokens{st.PrivacyTokens})
		st.PrivacyTokens = &TokenStore{core: c}
	}
	if current, ok := st.AppState.(*appStateWatch); !ok || current.core != c {
		watch := &appStateWatch{AppStateStore: st.AppState, core: c}
		c.appState = watch
		st.AppState = watch
	}
	c.attachSaltStore()
	c.watchLogout()
}

// watchLogout puts a LogoutWatch of this core in front of the device's
// container. A watch left there by a plugin closed on the same client is
// replaced, not kept: it belongs to the closed core, which ignores the
// logout, and the account's rows would stay.
func (c *Core) watchLogout() {
	st := c.cli.Store
	inner := st.Container
	if current, ok := inner.(*logoutWatch); ok {
		if current.core == c {
			return
		}
		inner = current.DeviceContainer
	}
	if inner != nil {
		st.Container = &logoutWatch{DeviceContainer: inner, core: c}
	}
}
