package hooks

import (
	"context"
	"time"

	"go.mau.fi/whatsmeow/types"
)

// The decision a send made is pinned in the context it hands whatsmeow, so
// that whatsmeow's own reads during that send (the tctoken through
// TokenStore, the salt through SaltStore) agree with it. This file is the
// only place that writes or reads it.

type pinKey struct{}

// pinned is a decision made by Plugin.SendMessage for one recipient.
type pinned struct {
	lid, pn  types.JID
	decision Decision
}

// pinDecision returns the context of one send to lid or pn (either may be
// empty) with decision pinned in it.
func pinDecision(ctx context.Context, lid, pn types.JID, decision Decision) *sendContext {
	sendCtx := &sendContext{Context: ctx, pin: pinned{lid: lid, pn: pn, decision: decision}}
	sendCtx.detached.parent = sendCtx
	return sendCtx
}

// pinOf returns the decision pinned in ctx, or nil outside a send.
func pinOf(ctx context.Context) *pinned {
	pin, _ := ctx.Value(pinKey{}).(*pinned)
	return pin
}

// pinFor returns the decision pinned in ctx for user (without its device),
// or nil when ctx is not a send to user.
func pinFor(ctx context.Context, user types.JID) *pinned {
	if pin := pinOf(ctx); pin != nil && (user == pin.lid || user == pin.pn) {
		return pin
	}
	return nil
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
