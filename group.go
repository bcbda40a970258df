package tctoken

import (
	"context"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/hooks"
)

// AB prop codes of the tokens on group calls; see WithPropOverride.
const (
	// PropGroupCreateToken (11261) gates the tokens of Plugin.CreateGroup.
	PropGroupCreateToken = hooks.PropGroupCreateToken
	// PropGroupAddToken (11262) gates those of Plugin.UpdateGroupParticipants.
	PropGroupAddToken = hooks.PropGroupAddToken
	// PropGroupMaxMissing (34957) is how many added participants without a
	// token one call may carry before the plugin warns.
	PropGroupMaxMissing = hooks.PropGroupMaxMissing
)

// ErrGroupUpdate is returned by UpdateGroupParticipants when an add it sent
// itself failed. It wraps the cause: whatsmeow's *IQError for the server's
// error reply (so errors.Is against whatsmeow.ErrIQForbidden and the like
// works), ErrDisconnected, the context's error, or a malformed reply.
var ErrGroupUpdate = hooks.ErrGroupUpdate

// UpdateGroupParticipants has exactly the signature of
// Client.UpdateGroupParticipants. An add carries each added contact's valid
// tctoken in <privacy> when AB prop 11262 allows it (off by default);
// removals, promotions and demotions, and adds with the prop off, are the
// client's own call. On whatsmeow 2025-12, whose method attaches nothing,
// the plugin sends the add itself and reads the reply as whatsmeow does; a
// newer whatsmeow attaches the tokens itself, and the plugin hands it the
// ones the prop allows.
func (p *Plugin) UpdateGroupParticipants(ctx context.Context, group types.JID, participants []types.JID, action whatsmeow.ParticipantChange) ([]types.GroupParticipant, error) {
	return p.core.UpdateGroupParticipants(ctx, group, participants, action)
}

// CreateGroup has exactly the signature of Client.CreateGroup. whatsmeow
// puts the participants' tokens in <privacy> itself; through the plugin it
// gets them only when AB prop 11261 allows it (off by default). It returns
// whatever whatsmeow returned.
func (p *Plugin) CreateGroup(ctx context.Context, req whatsmeow.ReqCreateGroup) (*types.GroupInfo, error) {
	return p.core.CreateGroup(ctx, req)
}
