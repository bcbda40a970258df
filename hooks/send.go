package hooks

import (
	"context"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
)

// Decide gathers what the decision needs (cache, salt, policy) and returns
// what to attach for a send to `to` now. No I/O once the contact is cached.
// Any failure degrades to the best decision possible without it.
//
// It is on every send's path: the recipient is judged eligible once, the
// clock is read only for a stored token, and the cstoken is looked up only
// when it is the decision.
func (c *Core) Decide(ctx context.Context, to types.JID, peer bool) (Decision, types.JID, types.JID) {
	in := DecisionInput{To: to, Peer: peer, Own: c.own()}
	var why string
	if !peer {
		why = Ineligible(to, in.Own)
	}
	if peer || why != "" {
		return decide(&in, why), types.EmptyJID, types.EmptyJID
	}
	v, err := c.view(ctx, to)
	if err != nil {
		// Decide with what is known without the database: the LID and the
		// salt still give a cstoken.
		_, lid, pn := c.resolve(ctx, to)
		in.LID, in.Salt, in.Policy = lid, c.Salt(), c.Policy()
		decision := decide(&in, "")
		if decision.Attach == AttachCSToken {
			decision.Token = CSToken(in.Salt, lid)
		}
		return decision, lid, pn
	}
	salt := v.acc.salt.Load()
	if salt != nil {
		in.Salt = *salt
	}
	in.LID, in.Policy = v.lid, *v.acc.policy.Load()
	if in.Token = v.entry.token; len(in.Token) > 0 {
		in.TokenTS, in.Now = v.entry.tokenTS, c.nowUnix()
	}
	decision := decide(&in, "")
	if decision.Attach == AttachCSToken {
		decision.Token = c.cachedCSToken(salt, v.lid)
	}
	return decision, v.lid, v.pn
}

// SendMessage is Client.SendMessage with the fallback chain applied: it
// pins the decision in the context so whatsmeow's own <tctoken> read agrees,
// appends <cstoken> through AdditionalNodes when that is the decision, and
// after the server accepted a 1:1 message, issues our token if due. A 1:1
// message refused with 463 is diagnosed, recovered from as the policy
// allows, and returned as a *SendError.
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
	if err != nil && !req.Peer && Ineligible(to, c.own()) == "" && Is463(err) {
		return c.after463(ctx, to, message, req, resp, sent, err)
	}
	return resp, err
}

// sendOnce decides, pins and sends one message, and reports what it sent
// with. A resend after a 463 goes through here again, deciding afresh.
func (c *Core) sendOnce(ctx context.Context, to types.JID, message *waE2E.Message, req whatsmeow.SendRequestExtra) (whatsmeow.SendResponse, sendState, error) {
	decision, lid, pn := c.Decide(ctx, to, req.Peer)
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
	sendCtx := &sendContext{Context: ctx, pin: pinned{lid: lid, pn: pn, decision: decision}}
	sendCtx.detached.parent = sendCtx
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

// sendContext is the context of one send: the caller's, with the decision
// pinned for the interposer (under pinKey), and detached, the same
// without the caller's cancellation (context.WithoutCancel) for the work
// after the send. One allocation per send instead of three.
type sendContext struct {
	context.Context
	pin      pinned
	detached detachedContext
}

func (s *sendContext) Value(key any) any {
	if _, ok := key.(pinKey); ok {
		return &s.pin
	}
	return s.Context.Value(key)
}

// detachedContext is context.WithoutCancel(parent).
type detachedContext struct{ parent context.Context }

func (detachedContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (detachedContext) Done() <-chan struct{}       { return nil }
func (detachedContext) Err() error                  { return nil }
func (d *detachedContext) Value(key any) any        { return d.parent.Value(key) }

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

// cachedCSToken returns the cstoken over lid under salt (the salt in
// force), from a bounded cache: the HMAC is most of what a first-contact
// send costs. Entries remember the salt they were computed with, so a salt
// change needs no purge that a concurrent computation could undo.
func (c *Core) cachedCSToken(salt *[]byte, lid types.JID) []byte {
	if salt == nil || lid.IsEmpty() {
		return nil
	}
	if cached, ok := c.cstokens.Get(lid); ok && cached.salt == salt {
		return cached.token
	}
	token := CSToken(*salt, lid)
	c.cstokens.Add(lid, cstokenEntry{salt: salt, token: token})
	return token
}
