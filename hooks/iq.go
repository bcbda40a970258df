package hooks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// defaultIQTimeout bounds how long a background IQ may wait for its reply.
const defaultIQTimeout = 30 * time.Second

// ErrDisconnected means the connection was down, or dropped before the
// server replied.
var ErrDisconnected = errors.New("disconnected before the server replied")

// sendIQ sends one IQ and waits for its reply. whatsmeow 2025-12 has no
// public way to send an arbitrary IQ (its SendIQ takes an unexported type),
// so this uses the exported response-waiter primitives the same way.
func sendIQ(ctx context.Context, cli *whatsmeow.Client, namespace, iqType string, content waBinary.Node) (*waBinary.Node, error) {
	return sendIQTo(ctx, cli, types.ServerJID, namespace, iqType, content)
}

// sendIQTo is sendIQ to another address than the server, such as a group.
func sendIQTo(ctx context.Context, cli *whatsmeow.Client, to types.JID, namespace, iqType string, content waBinary.Node) (*waBinary.Node, error) {
	//lint:ignore SA1019 whatsmeow 2025-12 exports no other way to send an arbitrary IQ and wait for its reply.
	internals := cli.DangerousInternals()
	id := internals.GenerateRequestID()
	waiter := internals.WaitResponse(id)
	err := internals.SendNode(ctx, waBinary.Node{
		Tag: "iq",
		Attrs: waBinary.Attrs{
			"id":    id,
			"xmlns": namespace,
			"type":  iqType,
			"to":    to,
		},
		Content: []waBinary.Node{content},
	})
	if err != nil {
		internals.CancelResponse(id, waiter)
		// Not sent: the connection is down (whatsmeow's ErrNotConnected)
		// or its socket failed, which is ErrDisconnected to the caller.
		return nil, fmt.Errorf("send %s iq: %w: %w", namespace, ErrDisconnected, err)
	}
	timeout := time.NewTimer(defaultIQTimeout)
	defer timeout.Stop()
	select {
	case reply, ok := <-waiter:
		if !ok || reply == nil || reply.Tag == "xmlstreamend" || reply.Tag == "stream:error" {
			return nil, fmt.Errorf("%s iq: %w", namespace, ErrDisconnected)
		}
		return reply, nil
	case <-ctx.Done():
		internals.CancelResponse(id, waiter)
		return nil, fmt.Errorf("%s iq: %w", namespace, ctx.Err())
	case <-timeout.C:
		internals.CancelResponse(id, waiter)
		return nil, fmt.Errorf("%s iq: %w", namespace, whatsmeow.ErrIQTimedOut)
	}
}

// whatsmeowIQError is an <iq type="error"> as whatsmeow's own *IQError, the
// way whatsmeow reads one, so that errors.Is against whatsmeow.ErrIQForbidden
// and the like works as with the client's own methods.
func whatsmeowIQError(node *waBinary.Node) *whatsmeow.IQError {
	iqErr := &whatsmeow.IQError{RawNode: node}
	if errNode, ok := node.GetOptionalChildByTag("error"); ok {
		iqErr.ErrorNode = &errNode
		ag := errNode.AttrGetter()
		iqErr.Code = ag.OptionalInt("code")
		iqErr.Text = ag.OptionalString("text")
	}
	return iqErr
}
