package hooks

import (
	"context"
	"time"

	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// handleEvent runs on whatsmeow's event loop: anything that does I/O goes to
// the background so that no event is delayed by the plugin.
func (c *Core) handleEvent(rawEvt any) {
	if c.closed.Load() {
		// Closed: the handler may still be registered until whatsmeow's
		// dispatch lets Close remove it.
		return
	}
	switch evt := rawEvt.(type) {
	case *events.Connected:
		gen := c.connGen.Add(1)
		c.goBackground(func(ctx context.Context) { c.connectedLoop(ctx, gen) })
	case *events.Disconnected, *events.StreamReplaced, *events.KeepAliveTimeout:
		c.connGen.Add(1)
		// Presence subscriptions live as long as the connection.
		c.subscribed.Purge()
	case *events.PairSuccess:
		jid := evt.ID
		// Pairing saved the device, which gave it whatsmeow's SQL stores in
		// place of the plugin's interposers: put them back, on the event
		// loop, before anything else reads them.
		c.interpose()
		c.loggedOut.Store(false)
		c.goBackground(func(ctx context.Context) {
			if err := c.bind(ctx, jid); err != nil {
				c.log.Err(err).Stringer("account", jid).Msg("Failed to bind the plugin to the newly paired account")
			}
		})
	case *events.LoggedOut:
		c.connGen.Add(1)
		c.loggedOut.Store(true)
		c.goBackground(func(ctx context.Context) { c.forgetAccount(ctx, types.EmptyJID) })
	case *events.IdentityChange:
		if !evt.Implicit && c.nativeReissues(evt.JID) {
			return
		}
		jid := evt.JID
		c.goBackground(func(ctx context.Context) { c.reissue(ctx, jid) })
	case *events.Receipt:
		c.handleReceipt(evt)
	case *events.Presence:
		c.notePresence(evt.From)
	case *events.HistorySync:
		data := evt.Data
		c.goBackground(func(ctx context.Context) { c.handleHistorySync(ctx, data) })
	case *events.AppState:
		if len(evt.Index) > 0 && evt.Index[0] == indexNCTSalt {
			value := evt.SyncActionValue
			// whatsmeow 33cfac51 dispatches the event only after applying
			// every mutation of the sync, a REMOVE after the SET included:
			// the SET orders where whatsmeow applied it, by the seq its
			// PutNCTSalt took. whatsmeow 2025-12 calls no salt store, and
			// the event is numbered as it arrives.
			seq, ok := c.saltPuts.take(c.compat.AppStateSalt(value), time.Now())
			if !ok {
				seq = c.saltSeq.Add(1)
			}
			c.goBackground(func(ctx context.Context) { c.applyAppStateSalt(ctx, value, seq) })
		}
	case *events.AppStateSyncComplete:
		// Also with EmitAppStateEventsOnFullSync: only the re-read sees
		// that a snapshot lacks the salt (removed while we were away).
		if evt.Name == appstate.WAPatchRegularHigh {
			c.goBackground(c.rescanSaltSnapshot)
		}
	default:
		if state, ok := c.readTimelockEvent(rawEvt); ok {
			c.handleTimelockEvent(state)
		}
	}
}

// handleReceipt is how Enable alone learns that a message reached a contact:
// a receipt from them in a 1:1 chat for a message we sent. Plugin.SendMessage
// triggers issuance directly on the server's ack instead.
func (c *Core) handleReceipt(evt *events.Receipt) {
	// A whatsmeow that issues after every DM needs no receipt to trigger it.
	if c.compat.Native() {
		return
	}
	if evt.IsFromMe || evt.IsGroup || evt.Chat.Server == types.BroadcastServer {
		return
	}
	switch evt.Type {
	case types.ReceiptTypeDelivered, types.ReceiptTypeRead, types.ReceiptTypePlayed, types.ReceiptTypeReadSelf:
	default:
		return
	}
	// Queued, not a goroutine per receipt: a burst of receipts becomes a
	// few batched IQs. The worker checks eligibility and what is due.
	c.enqueueIssue(evt.Chat)
}

// forgetAccount deletes everything the plugin kept for a logged-out device:
// the bound account, or jid when none was bound yet.
// Writes already on their way to the account's tables end first (see
// accountFence), so that none puts a row back after the deletion.
func (c *Core) forgetAccount(ctx context.Context, jid types.JID) {
	// Under the bind lock: a bind under way stores its account before this
	// takes it away, never after.
	c.bindMu.Lock()
	acc := c.account.Swap(nil)
	c.bindMu.Unlock()
	c.forgetCache()
	c.subscribed.Purge()
	if acc != nil {
		jid = acc.jid
		if inside := acc.fence.close(); inside > 0 {
			c.log.Debug().Stringer("account", jid).Int("writes", inside).
				Msg("Waiting for the account's writes under way before deleting its data")
		}
		if err := acc.fence.wait(ctx); err != nil {
			c.log.Err(err).Stringer("account", jid).Msg("Failed to delete the plugin's data after logout")
			return
		}
	}
	if jid.IsEmpty() {
		return
	}
	if err := c.container.DeleteAccount(ctx, jid); err != nil {
		c.log.Err(err).Stringer("account", jid).Msg("Failed to delete the plugin's data after logout")
		return
	}
	c.log.Info().Stringer("account", jid).Msg("Deleted the plugin's data of the logged-out account")
}
