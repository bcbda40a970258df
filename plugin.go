// Package tctoken makes a whatsmeow client handle WhatsApp's trusted-contact
// privacy tokens, so that first messages and replies are not rejected with
// error 463.
//
// Enable it with one line after creating the client:
//
//	plugin, err := tctoken.Enable(ctx, client, db)
//
// From then on the plugin stores the tokens contacts issue to us, attaches
// valid ones to messages, presence subscriptions and profile picture
// requests, issues our own token after messages reach a contact, reissues it
// when a contact reinstalls, prunes expired tokens and follows the server's
// AB props. Send through Plugin.SendMessage instead of Client.SendMessage to
// also get the cstoken fallback on first contact.
package tctoken

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/hooks"
	"github.com/tctoken/tctoken/sqlstore"
)

// Timing is the bucket configuration for token expiry on both sides.
type Timing = hooks.Timing

// Defaults is what the plugin does before the server's AB props are known.
type Defaults = hooks.Defaults

// Policy is the configuration in force: defaults, server props, overrides.
type Policy = hooks.Policy

// ReceivedToken is a token a contact issued to us.
type ReceivedToken = hooks.ReceivedToken

// Decision is what the plugin attaches to a message, and why.
type Decision = hooks.Decision

// What a Decision attaches.
const (
	AttachNothing = hooks.AttachNothing
	AttachTCToken = hooks.AttachTCToken
	AttachCSToken = hooks.AttachCSToken
)

// AB prop codes the plugin obeys; see WithPropOverride.
const (
	PropReceiverDuration = hooks.PropReceiverDuration
	PropReceiverBuckets  = hooks.PropReceiverBuckets
	PropSenderDuration   = hooks.PropSenderDuration
	PropSenderBuckets    = hooks.PropSenderBuckets
	PropTCTokenOn1to1    = hooks.PropTCTokenOn1to1
	PropNCTSend          = hooks.PropNCTSend
	PropIssueToLID       = hooks.PropIssueToLID
)

// DefaultTiming is 4 buckets of 7 days on both sides.
func DefaultTiming() Timing { return hooks.DefaultTiming() }

// DefaultDefaults is what the plugin does before the server's AB props are
// known, unless WithDefaults says otherwise: DefaultTiming, and every gate
// on. Start from it to change one field; a Defaults literal leaves the
// gates it does not name off.
func DefaultDefaults() Defaults { return hooks.DefaultDefaults() }

// ShortHash is how token bytes and the salt appear in the plugin's logs and
// in Explanation.Token: the first four bytes of their SHA-256 in hex, enough
// to tell two apart and useless to an attacker; "none" for no bytes.
func ShortHash(secret []byte) string { return hooks.ShortHash(secret) }

// Entry is what the plugin holds about one contact.
type Entry struct {
	// JID is the key the entry is stored under: the LID when known.
	JID types.JID
	// Token is the token the contact issued to us, nil if none.
	Token []byte
	// TokenTimestamp is when the contact issued it; zero if none.
	TokenTimestamp time.Time
	// SenderTimestamp is when we last issued our token to the contact;
	// zero if never.
	SenderTimestamp time.Time
}

// Option tunes Enable. The With functions make them; the zero Option
// changes nothing.
type Option struct{ apply func(*hooks.Config) }

// WithLogger sets the plugin's logger. By default it logs nothing.
func WithLogger(log zerolog.Logger) Option {
	return Option{func(cfg *hooks.Config) { cfg.Log = log }}
}

// WithClock replaces time.Now, for tests and demos that move time forward.
func WithClock(now func() time.Time) Option {
	return Option{func(cfg *hooks.Config) { cfg.Now = now }}
}

// WithDefaults sets what applies before the server's AB props are known.
func WithDefaults(defaults Defaults) Option {
	return Option{func(cfg *hooks.Config) { cfg.Defaults = &defaults }}
}

// WithPropOverride forces one AB prop locally, over the server's value.
func WithPropOverride(code int, value string) Option {
	return Option{func(cfg *hooks.Config) {
		if cfg.PropOverrides == nil {
			cfg.PropOverrides = make(map[int]string)
		}
		cfg.PropOverrides[code] = value
	}}
}

// WithCacheSize bounds the in-memory token cache (default 4096 contacts).
func WithCacheSize(entries int) Option {
	return Option{func(cfg *hooks.Config) { cfg.CacheSize = entries }}
}

// Plugin is the plugin enabled on one client.
type Plugin struct {
	cli       *whatsmeow.Client
	core      *hooks.Core
	container *sqlstore.Container
	closeOnce sync.Once
}

// enabling holds the clients an Enable is working on right now, so that
// two calls on one client cannot both find it free while the database I/O
// runs without the lock. A client leaves it when Enable returns: a map of
// enabled clients would keep every discarded client alive, and once Enable
// succeeded the client's own interposed store says it is enabled.
var (
	enabledMu sync.Mutex
	enabling  = make(map[*whatsmeow.Client]struct{})
)

// Enable runs the plugin's schema upgrades in db (the database that holds
// whatsmeow's store, or any other), interposes on the client's privacy token
// store and registers the event handlers. The client may be logged in or
// not yet paired. Call it once per client, before Connect.
//
// It fails with ErrInvalidArgument for a nil client or database or an
// option that could not be applied, ErrAlreadyEnabled on a client the
// plugin is enabled on, and ErrDatabase (with ErrNotBound when loading a
// logged-in account failed) when the database fails; the client is then
// left as it was.
func Enable(ctx context.Context, cli *whatsmeow.Client, db *dbutil.Database, opts ...Option) (*Plugin, error) {
	if cli == nil || cli.Store == nil {
		return nil, fmt.Errorf("%w: Enable needs a client with a device store", ErrInvalidArgument)
	}
	if db == nil {
		return nil, fmt.Errorf("%w: Enable needs a database", ErrInvalidArgument)
	}
	var cfg hooks.Config
	for _, opt := range opts {
		if opt.apply != nil {
			opt.apply(&cfg)
		}
	}
	if cfg.OptionErr != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, cfg.OptionErr)
	}
	// Reserve the client, then do the database I/O without the global lock,
	// so that a multi-account bridge enabling many clients at once is not
	// serialised behind one of them.
	enabledMu.Lock()
	if _, dup := enabling[cli]; dup {
		enabledMu.Unlock()
		return nil, ErrAlreadyEnabled
	}
	if other, dup := cli.Store.PrivacyTokens.(*hooks.TokenStore); dup && !other.Closed() {
		enabledMu.Unlock()
		return nil, ErrAlreadyEnabled
	}
	enabling[cli] = struct{}{}
	enabledMu.Unlock()
	p, err := enable(ctx, cli, db, cfg)
	enabledMu.Lock()
	delete(enabling, cli)
	enabledMu.Unlock()
	if err != nil {
		return nil, err
	}
	return p, nil
}

func enable(ctx context.Context, cli *whatsmeow.Client, db *dbutil.Database, cfg hooks.Config) (*Plugin, error) {
	container := sqlstore.New(db)
	if cfg.Now != nil {
		container.SetClock(cfg.Now)
	}
	if err := container.Upgrade(ctx); err != nil {
		return nil, fmt.Errorf("tctoken: upgrade the plugin's tables: %w: %w", ErrDatabase, err)
	}
	core := hooks.New(cli, container, cfg)
	if err := core.Attach(ctx); err != nil {
		return nil, fmt.Errorf("tctoken: attach to the client: %w: %w", ErrNotBound, err)
	}
	return &Plugin{cli: cli, core: core, container: container}, nil
}

// EnableWithSQL is Enable for a bridge that holds a plain *sql.DB. The
// dialect is "sqlite3" or "postgres", as whatsmeow's sqlstore takes it.
func EnableWithSQL(ctx context.Context, cli *whatsmeow.Client, db *sql.DB, dialect string, opts ...Option) (*Plugin, error) {
	wrapped, err := dbutil.NewWithDB(db, dialect)
	if err != nil {
		return nil, fmt.Errorf("tctoken: wrap the database (dialect %q): %w: %w", dialect, ErrInvalidArgument, err)
	}
	return Enable(ctx, cli, wrapped, opts...)
}

// Close unregisters the plugin's event handlers and waits for its
// background work (issuance, pruning) to finish, for a bounded time. From
// then on whatsmeow's reads and writes pass through to its own privacy
// token store. It is safe from any goroutine, including inside a whatsmeow
// event handler, and more than once.
func (p *Plugin) Close() {
	p.closeOnce.Do(p.core.Close)
}

// SendMessage has exactly the signature of Client.SendMessage. It attaches a
// valid tctoken, else a cstoken computed from the NCT salt and the
// recipient's LID, else nothing, and issues our token after the server
// accepted a 1:1 message. It returns whatever whatsmeow returned.
func (p *Plugin) SendMessage(ctx context.Context, to types.JID, message *waE2E.Message, extra ...whatsmeow.SendRequestExtra) (whatsmeow.SendResponse, error) {
	return p.core.SendMessage(ctx, to, message, extra...)
}

// HandleHistorySync captures the NCT salt and the conversation tokens of a
// history-sync blob that the bridge downloaded itself. A bridge that sets
// whatsmeow's ManualHistorySyncDownload never lets events.HistorySync reach
// the plugin, so it calls this right after Client.DownloadHistorySync
// returns the blob. It runs synchronously; calling it for a blob the plugin
// also saw as an event is harmless.
func (p *Plugin) HandleHistorySync(ctx context.Context, blob *waHistorySync.HistorySync) {
	p.core.HandleHistorySync(ctx, blob)
}

// SubscribePresence is Client.SubscribePresence, remembered: when the
// contact later sends a new token, the subscription is re-sent with it.
func (p *Plugin) SubscribePresence(ctx context.Context, jid types.JID) error {
	return p.core.SubscribePresence(ctx, jid)
}

// IssueTokens issues our token to each contact, in one privacy IQ per 100
// contacts, and records the sender timestamp for those the server accepted.
// It returns the tokens the reply carried (usually none). Groups,
// broadcasts, newsletters, bots and our own account are refused before
// anything is sent, with ErrIneligible. A failed IQ is ErrDisconnected,
// whatsmeow.ErrIQTimedOut, an *IQError or ErrMalformedReply; an issuance
// the server accepted but the database could not record is ErrNotRecorded.
func (p *Plugin) IssueTokens(ctx context.Context, jids []types.JID) ([]ReceivedToken, error) {
	return p.core.IssueTokens(ctx, jids)
}

// PruneExpired deletes the tokens expired on the receiver side and returns
// how many. The plugin also prunes on every connect and daily. Like every
// call that needs the account, it fails with ErrNotLoggedIn before pairing,
// ErrNotBound while the account's state cannot be loaded, and ErrDatabase.
func (p *Plugin) PruneExpired(ctx context.Context) (int64, error) {
	return p.core.Prune(ctx)
}

// Get returns what is stored for a contact, by PN or LID (either finds the
// same entry through whatsmeow's LID map), or nil. The token is returned
// even if expired; Decide says whether it would be attached.
func (p *Plugin) Get(ctx context.Context, jid types.JID) (*Entry, error) {
	stored, err := p.core.Get(ctx, jid)
	if err != nil || stored == nil {
		return nil, err
	}
	entry := &Entry{JID: stored.Contact, Token: stored.Token}
	if stored.TokenTS > 0 {
		entry.TokenTimestamp = time.Unix(stored.TokenTS, 0)
	}
	if stored.SenderTS > 0 {
		entry.SenderTimestamp = time.Unix(stored.SenderTS, 0)
	}
	return entry, nil
}

// GetAllJIDs lists the contacts we hold a token from.
func (p *Plugin) GetAllJIDs(ctx context.Context) ([]types.JID, error) {
	return p.core.Contacts(ctx)
}

// Decide says what SendMessage would attach for a message to `to` now.
func (p *Plugin) Decide(ctx context.Context, to types.JID) Decision {
	decision, _, _ := p.core.Decide(ctx, to, false)
	return decision
}

// Policy returns the configuration in force: timing and gates.
func (p *Plugin) Policy() Policy { return p.core.Policy() }

// HasSalt reports whether the NCT salt is known, which cstokens need.
func (p *Plugin) HasSalt() bool { return len(p.core.Salt()) > 0 }
