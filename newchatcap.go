package tctoken

import (
	"context"
	"strings"

	"github.com/tctoken/tctoken/hooks"
)

// NewChatCapState is what is known of the account's new-chat cap: the
// server's limit on how many new one-on-one chats the account may start in
// a cycle, separate from the reach-out timelock. Status is an open set:
// a value the plugin does not know is kept as the server sent it.
type NewChatCapState = hooks.NewChatCapState

// NewChatCapChanged is dispatched through the client's event handlers when
// what the server says of the new-chat cap changed.
type NewChatCapChanged = hooks.NewChatCapChanged

// NewChatCapPolicy is what the AB props say of the new-chat cap: whether
// it applies, its limit, the fetch TTL and the first-warning threshold.
type NewChatCapPolicy = hooks.NewChatCapPolicy

// CapStatus is the server's capping status.
type CapStatus = hooks.CapStatus

// The capping statuses WhatsApp Web knows.
const (
	CapNone          = hooks.CapNone
	CapFirstWarning  = hooks.CapFirstWarning
	CapSecondWarning = hooks.CapSecondWarning
	CapCapped        = hooks.CapCapped
)

// NewChatCapFromQuery is NewChatCapState.Source for a state the plugin
// fetched: the only source while no whatsmeow hands over the push.
const NewChatCapFromQuery = hooks.NewChatCapFromQuery

// The new-chat cap query's ids: the current one, the default, and the one
// before it, tried when the server rejects the current one.
const (
	NewChatCapQueryID       = hooks.NewChatCapQueryID
	NewChatCapQueryIDLegacy = hooks.NewChatCapQueryIDLegacy
)

// The AB props of the new-chat cap.
const (
	PropNewChatCapEnabled      = hooks.PropNewChatCapEnabled
	PropNewChatCapLimit        = hooks.PropNewChatCapLimit
	PropNewChatCapFetchTTL     = hooks.PropNewChatCapFetchTTL
	PropNewChatCapFirstWarning = hooks.PropNewChatCapFirstWarning
)

// WithNewChatCapQueryID makes the plugin ask for the new-chat cap under
// this query id alone, for when WhatsApp rotates it again before the
// plugin follows. Without it the plugin sends NewChatCapQueryID, and
// NewChatCapQueryIDLegacy when the server rejects that. An empty id keeps
// the default.
func WithNewChatCapQueryID(id string) Option {
	return Option{func(cfg *hooks.Config) { cfg.NewChatCapQueryID = strings.TrimSpace(id) }}
}

// NewChatCap returns the account's new-chat cap as last received: from
// the database at start, then from each fetch. The zero state means the
// server never said (the AB props do not enable the cap, or no fetch
// succeeded yet).
func (p *Plugin) NewChatCap() NewChatCapState { return p.core.NewChatCap() }

// RefreshNewChatCap asks the server for the new-chat cap now, whatever the
// fetch TTL, and returns what it said. The plugin fetches by itself at
// connect and once per TTL; a bridge calls this when it has a reason to
// think the cap changed, such as a first contact refused with 463. It
// returns ErrNewChatCapDisabled when the AB props do not enable the cap,
// and ErrNewChatCapQuery when the server gave no usable answer; the last
// known state stays in force either way.
func (p *Plugin) RefreshNewChatCap(ctx context.Context) (NewChatCapState, error) {
	return p.core.RefreshNewChatCap(ctx)
}
