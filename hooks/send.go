package hooks

import (
	"context"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
)

// SendMessage is Client.SendMessage with the fallback chain applied: it
// pins the decision in the context so whatsmeow's own <tctoken> read agrees,
// appends <cstoken> through AdditionalNodes when that is the decision, and
// after the server accepted a 1:1 message, issues our token if due. A 1:1
// message refused with 463 is diagnosed, recovered from as the policy
// allows, and returned as a *SendError; so is a first contact the guard
// refused before the wire (guard.go).
func (c *Core) SendMessage(ctx context.Context, to types.JID, message *waE2E.Message, extra ...whatsmeow.SendRequestExtra) (whatsmeow.SendResponse, error) {
	if len(extra) > 1 {
		// Let whatsmeow reject it with its own error.
		return c.cli.SendMessage(ctx, to, message, extra...)
	}
	var req whatsmeow.SendRequestExtra
	if len(extra) == 1 {
		req = extra[0]
	}
	resp, sent, err := c.sendOnce(ctx, to, message, req)
	if err == nil || req.Peer || ineligible(to, c.own()) != "" || !is463(err) {
		return resp, err
	}
	// Refused with 463: diagnose, recover as the policy allows, resend once
	// when what the send lacked became known, and tell the bridge.
	refused := c.diagnose463(ctx, to, resp.ID, sent, err)
	refused.Recovery = c.recover(ctx, to, refused.key, refused.Diagnosis)
	final, finalErr := resp, error(nil)
	if c.resendDue(ctx, to, sent, refused.Recovery) {
		req.ID = resp.ID
		refused.Recovery.Resent = true
		final, _, finalErr = c.sendOnce(ctx, to, message, req)
		refused.Recovery.ResendAccepted = finalErr == nil
		c.log.Info().Stringer("to", to).Str("message_id", resp.ID).Bool("accepted", finalErr == nil).
			Msg("Resent a message refused with 463 once, after what it lacked became known")
	}
	return final, c.report463(refused, finalErr)
}

// sendOnce decides, pins and sends one message, runs the after-send steps
// of an accepted one (issue, and the diagnosis's pattern), and reports what
// it sent with. A resend after a 463 goes through here again, deciding
// afresh.
func (c *Core) sendOnce(ctx context.Context, to types.JID, message *waE2E.Message, req whatsmeow.SendRequestExtra) (whatsmeow.SendResponse, sendState, error) {
	decision, lid, pn := c.Decide(ctx, to, req.Peer)
	// The guard comes before the LID lookup: whatever it finds, the
	// contact stays one we hold no valid tctoken from.
	if refused := c.guard(to, decision, req); refused != nil {
		return whatsmeow.SendResponse{}, sendState{decision: decision}, refused
	}
	// CauseNoLID: no valid tctoken, the salt known and the gate on; only the
	// LID is missing, which the server can tell for a phone number.
	if !req.Peer && decision.Cause == CauseNoLID && to.Server == types.DefaultUserServer {
		if found := c.lookupLID(ctx, to); !found.IsEmpty() {
			decision, lid, pn = c.Decide(ctx, to, req.Peer)
		}
	}
	if decision.Attach != AttachNothing && callerAttachedToken(req.AdditionalNodes) {
		decision = Decision{Cause: CauseCallerToken, Reason: "caller attached its own token"}
	}
	sent := sendState{decision: decision, salt: len(c.Salt()) > 0, lid: !lid.IsEmpty()}
	if event := c.log.Debug(); event.Enabled() {
		// Hashing the token costs more than the rest of a cached decision:
		// only when the line is logged.
		event.Stringer("to", to).Stringer("attach", decision.Attach).Stringer("cause", decision.Cause).Str("reason", decision.Reason).
			Str("token", ShortHash(decision.Token)).Msg("Decided what to attach")
	}
	if lid.IsEmpty() && pn.IsEmpty() {
		pn = to.ToNonAD()
	}
	sendCtx := pinDecision(ctx, lid, pn, decision)
	ctx = sendCtx
	// A whatsmeow that attaches tokens itself adds the cstoken from the
	// plugin's salt store, as the pin decides: adding one here would double it.
	native := c.compat.Native()
	if decision.Attach == AttachCSToken && !native {
		var nodes []waBinary.Node
		if req.AdditionalNodes != nil {
			nodes = append(nodes, *req.AdditionalNodes...)
		}
		nodes = append(nodes, waBinary.Node{Tag: "cstoken", Content: decision.Token})
		req.AdditionalNodes = &nodes
	}
	resp, err := c.cli.SendMessage(ctx, to, message, req)
	if !req.Peer && decision.Cause != CauseIneligible {
		c.metrics.tokenAttached(decision.Attach)
	}
	// Such a whatsmeow also issues after every DM, deduplicated by the sender
	// timestamps the interposer hands it.
	if err == nil && !req.Peer && !native && decision.Cause != CauseIneligible {
		// The contact is known to be eligible, and by its LID when the
		// decision found one: the check reads the cache without asking
		// whatsmeow's LID map again.
		by := to
		if !lid.IsEmpty() {
			by = lid
		}
		c.maybeIssueAfterSend(&sendCtx.detached, to, by)
	}
	if err == nil && !req.Peer {
		c.noteAccepted(ctx, decision)
	}
	return resp, sent, err
}

func callerAttachedToken(nodes *[]waBinary.Node) bool {
	if nodes == nil {
		return false
	}
	for _, node := range *nodes {
		if node.Tag == "tctoken" || node.Tag == "cstoken" {
			return true
		}
	}
	return false
}
