package hooks

import (
	"context"
	"errors"
	"fmt"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// Tokens on group calls: a group create and a participant add may carry,
// per participant, <participant jid=…><privacy>TCTOKEN</privacy></participant>.
// AB props 11261 (create) and 11262 (add) gate them, both off by default.
// Only a tctoken goes there: no library puts a cstoken in <privacy>.
//
// whatsmeow reads those tokens from the store by itself where it attaches
// them (CreateGroup on both versions, UpdateGroupParticipants on the newer
// one), with the caller's context. The calls made through the plugin pin
// the gate in that context (groupGate), so that the interposer answers
// those reads as the gate says; a call made on the client directly carries
// no pin and stays whatsmeow's own behaviour. whatsmeow 2025-12's
// UpdateGroupParticipants attaches nothing, so the plugin builds that IQ
// itself when the gate is on.

// ErrGroupUpdate marks a failure of a group participant add the plugin
// sent itself: it wraps the cause (whatsmeow's *IQError for an error reply,
// ErrDisconnected, the context's error, a malformed reply).
var ErrGroupUpdate = errors.New("group participant update failed")

// groupGateKey pins a groupGate in a context.
type groupGateKey struct{}

// groupGate is the token gate of one group call made through the plugin.
type groupGate struct{ attach bool }

// pinGroupGate returns ctx with the gate of a group call pinned in it.
func pinGroupGate(ctx context.Context, attach bool) context.Context {
	return context.WithValue(ctx, groupGateKey{}, &groupGate{attach: attach})
}

// groupGateOf returns the gate pinned in ctx, or nil outside a group call
// made through the plugin.
func groupGateOf(ctx context.Context) *groupGate {
	gate, _ := ctx.Value(groupGateKey{}).(*groupGate)
	return gate
}

// CreateGroup is Client.CreateGroup with AB prop 11261 applied: whatsmeow
// attaches the tokens itself (on both versions), through the interposer,
// which hands it none while the gate is off.
func (c *Core) CreateGroup(ctx context.Context, req whatsmeow.ReqCreateGroup) (*types.GroupInfo, error) {
	policy := c.Policy()
	if policy.GroupCreateTokens {
		c.noteMissingGroupTokens("create", types.GroupServerJID, c.groupTokens(ctx, req.Participants), policy.GroupMaxMissing)
	}
	return c.cli.CreateGroup(pinGroupGate(ctx, policy.GroupCreateTokens), req)
}

// UpdateGroupParticipants is Client.UpdateGroupParticipants with the tokens
// of an add gated by AB prop 11262. Other actions, an add while the gate is
// off on whatsmeow 2025-12, and every add on a whatsmeow that attaches
// tokens by itself go to the client's own method (with the gate pinned for
// the latter); their results and errors are whatsmeow's.
func (c *Core) UpdateGroupParticipants(ctx context.Context, group types.JID, participants []types.JID, action whatsmeow.ParticipantChange) ([]types.GroupParticipant, error) {
	if action != whatsmeow.ParticipantChangeAdd {
		return c.cli.UpdateGroupParticipants(ctx, group, participants, action)
	}
	policy := c.Policy()
	if !policy.GroupAddTokens {
		return c.cli.UpdateGroupParticipants(pinGroupGate(ctx, false), group, participants, action)
	}
	tokens := c.groupTokens(ctx, participants)
	c.noteMissingGroupTokens("add", group, tokens, policy.GroupMaxMissing)
	if c.compat.Native() {
		return c.cli.UpdateGroupParticipants(pinGroupGate(ctx, true), group, participants, action)
	}
	return c.addWithTokens(ctx, group, participants, tokens)
}

// addWithTokens builds and sends the add IQ of whatsmeow 2025-12's
// UpdateGroupParticipants with each participant's valid tctoken in
// <privacy>, and reads the reply as whatsmeow does.
func (c *Core) addWithTokens(ctx context.Context, group types.JID, participants []types.JID, tokens [][]byte) ([]types.GroupParticipant, error) {
	content := make([]waBinary.Node, len(participants))
	attached := 0
	for i, jid := range participants {
		node := waBinary.Node{Tag: "participant", Attrs: waBinary.Attrs{"jid": jid}}
		if jid.Server == types.HiddenUserServer {
			pn, err := c.cli.Store.LIDs.GetPNForLID(ctx, jid)
			if err != nil {
				return nil, fmt.Errorf("%w: add to %s: phone number of %s: %w", ErrGroupUpdate, group, jid, err)
			}
			if !pn.IsEmpty() {
				node.Attrs["phone_number"] = pn
			}
		}
		if token := tokens[i]; len(token) > 0 {
			node.Content = []waBinary.Node{{Tag: "privacy", Content: token}}
			attached++
		}
		content[i] = node
	}
	reply, err := sendIQTo(ctx, c.cli, group, "w:g2", "set", waBinary.Node{Tag: string(whatsmeow.ParticipantChangeAdd), Content: content})
	if err != nil {
		return nil, fmt.Errorf("%w: add to %s: send: %w", ErrGroupUpdate, group, err)
	}
	out, err := parseGroupAddReply(reply)
	if err != nil {
		return nil, fmt.Errorf("%w: add to %s: reply: %w", ErrGroupUpdate, group, err)
	}
	c.log.Debug().Stringer("group", group).Int("participants", len(participants)).Int("tokens", attached).
		Msg("Added group participants with their privacy tokens")
	return out, nil
}

// groupToken is the token to put in a participant's <privacy>: a tctoken
// valid now under the receiver window, else nothing.
func (c *Core) groupToken(ctx context.Context, jid types.JID) []byte {
	if ineligible(jid, c.own()) != "" {
		return nil
	}
	v, err := c.view(ctx, jid)
	if err != nil || !v.holdsValidToken(c.nowUnix()) {
		return nil
	}
	return v.entry.token
}

// groupTokens is groupToken for each participant, in order.
func (c *Core) groupTokens(ctx context.Context, participants []types.JID) [][]byte {
	tokens := make([][]byte, len(participants))
	for i, jid := range participants {
		tokens[i] = c.groupToken(ctx, jid)
	}
	return tokens
}

// noteMissingGroupTokens counts the participants of a gated group call the
// plugin holds no valid token for, and warns when they exceed AB prop
// 34957. No source says what a client does past that limit; the plugin
// still sends the call, as whatsmeow alone would, so that a group change
// is never blocked, and says so.
func (c *Core) noteMissingGroupTokens(step string, group types.JID, tokens [][]byte, limit int64) {
	missing := 0
	for _, token := range tokens {
		if len(token) == 0 {
			missing++
		}
	}
	if int64(missing) > limit {
		c.log.Warn().Str("step", step).Stringer("group", group).Int("missing", missing).Int("participants", len(tokens)).
			Int64("limit", limit).Msg("More group participants without a privacy token than AB prop 34957 allows; sending anyway")
	}
}

// parseGroupAddReply reads the reply to an add IQ into the participants,
// as whatsmeow's UpdateGroupParticipants does: an error reply becomes
// whatsmeow's *IQError, so that errors.Is against whatsmeow.ErrIQForbidden
// and the like works as with the client's own method.
func parseGroupAddReply(reply *waBinary.Node) ([]types.GroupParticipant, error) {
	if reply == nil || reply.Tag != "iq" {
		return nil, fmt.Errorf("expected <iq>, got %s", describeTag(reply))
	}
	if typ, _ := reply.Attrs["type"].(string); typ == "error" {
		return nil, whatsmeowIQError(reply)
	}
	action, ok := reply.GetOptionalChildByTag(string(whatsmeow.ParticipantChangeAdd))
	if !ok {
		return nil, &whatsmeow.ElementMissingError{Tag: string(whatsmeow.ParticipantChangeAdd), In: "response to group participants update"}
	}
	children := action.GetChildrenByTag("participant")
	out := make([]types.GroupParticipant, len(children))
	for i := range children {
		out[i] = parseGroupParticipant(&children[i])
	}
	return out, nil
}

// parseGroupParticipant reads one <participant> of a reply: its address,
// the other address beside it, its role and, for a refused one, the error
// code and the invite the server offers instead.
func parseGroupParticipant(child *waBinary.Node) types.GroupParticipant {
	ag := child.AttrGetter()
	role := ag.OptionalString("type")
	p := types.GroupParticipant{
		JID:          ag.OptionalJIDOrEmpty("jid"),
		IsAdmin:      role == "admin" || role == "superadmin",
		IsSuperAdmin: role == "superadmin",
		DisplayName:  ag.OptionalString("display_name"),
	}
	switch p.JID.Server {
	case types.HiddenUserServer:
		p.LID = p.JID
		p.PhoneNumber = ag.OptionalJIDOrEmpty("phone_number")
	case types.DefaultUserServer:
		p.PhoneNumber = p.JID
		p.LID = ag.OptionalJIDOrEmpty("lid")
	}
	if code := ag.OptionalInt("error"); code != 0 {
		p.Error = code
		if req, ok := child.GetOptionalChildByTag("add_request"); ok {
			rag := req.AttrGetter()
			p.AddRequest = &types.GroupParticipantAddRequest{Code: rag.OptionalString("code"), Expiration: rag.OptionalUnixTime("expiration")}
		}
	}
	return p
}
