package hooks

import (
	"context"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/sqlstore"
)

// Adoption: the plugin joins bridges that already ran whatsmeow alone, and
// can leave them again, without a token being lost either way.
//
//   - On the first bind to an account, whatsmeow's own token table is
//     imported into the plugin's, in the background. Until that finishes, a
//     cold read also asks whatsmeow's store, so the first reply to an
//     existing contact still carries its token.
//   - Every token the plugin stores is written through to whatsmeow's store
//     with its right timestamp, so removing the plugin loses nothing.
//   - Client.Logout deletes the device through Store.Container, which emits
//     no event in whatsmeow 2025-12; a wrapper there forgets the account.

// startImport imports whatsmeow's tokens for the account once, unless that
// already happened (recorded in the database) or is running.
func (c *Core) startImport(acc *accountState) {
	if acc.imported.Load() || !acc.importing.CompareAndSwap(false, true) {
		return
	}
	c.goBackground(func(ctx context.Context) {
		defer acc.importing.Store(false)
		acc.bulkMu.Lock()
		defer acc.bulkMu.Unlock()
		start := time.Now()
		cutoff := acc.policy.Load().Timing.ReceiverCutoff(c.nowUnix())
		rows, err := acc.store.ImportWhatsmeowTokens(ctx, cutoff, c.wroteAll)
		if err != nil {
			// Reads keep asking whatsmeow's store meanwhile; the next
			// connect tries again.
			c.metrics.dbError("import")
			c.warnOnce("import", err, "Failed to import whatsmeow's privacy tokens; will retry on the next connect")
			return
		}
		c.clearWarned("import")
		acc.imported.Store(true)
		c.wroteAll()
		c.log.Info().Stringer("account", acc.jid).Int64("rows", rows).Dur("took", time.Since(start)).
			Msg("Imported whatsmeow's privacy tokens")
	})
}

// wroteAll is wrote for a write whose keys are not known one by one (the
// import): every cached entry is marked stale, and so read again on its next
// use, but still served if that read fails.
func (c *Core) wroteAll() {
	c.wrote(c.cache.Keys()...)
}

// innerRow reads whatsmeow's own store for a contact while the import has
// not finished, as one more row to merge. A failure only logs: the plugin's
// own rows still decide.
func (c *Core) innerRow(ctx context.Context, acc *accountState, key types.JID) *sqlstore.Entry {
	if acc.imported.Load() {
		return nil
	}
	token, err := c.innerStore().GetPrivacyToken(ctx, key)
	if err != nil {
		c.warnOnce("inner-read", err, "Failed to read whatsmeow's own privacy token store during the import")
		return nil
	}
	if token == nil || len(token.Token) == 0 || token.Timestamp.Unix() < 0 {
		return nil
	}
	return &sqlstore.Entry{Contact: key, Token: token.Token, TokenTS: token.Timestamp.Unix()}
}

// writeThrough copies tokens the plugin stored into whatsmeow's own store,
// so that whatsmeow alone (after Close, or with the Enable line removed)
// still holds every token. It never fails the plugin's write: a failure is
// logged once until a write-through succeeds again.
func (c *Core) writeThrough(ctx context.Context, writes []sqlstore.TokenWrite) {
	if len(writes) == 0 {
		return
	}
	if err := c.putInner(ctx, writes); err != nil {
		c.warnOnce("write-through", err, "Failed to copy privacy tokens to whatsmeow's own store; the plugin's tables still hold them")
		return
	}
	c.clearWarned("write-through")
}

// putInner writes tokens to whatsmeow's own store, in the transaction ctx
// holds when that store joins it (see writeJoined).
func (c *Core) putInner(ctx context.Context, writes []sqlstore.TokenWrite) error {
	if len(writes) == 0 {
		return nil
	}
	tokens := make([]store.PrivacyToken, len(writes))
	for i, write := range writes {
		tokens[i] = store.PrivacyToken{User: write.Contact, Token: write.Token, Timestamp: time.Unix(write.TokenTS, 0)}
	}
	return c.innerStore().PutPrivacyTokens(ctx, tokens...)
}

// LogoutWatch wraps Client.Store.Container: Client.Logout in whatsmeow
// 2025-12 deletes the device through it and emits no LoggedOut event, so
// this is where the plugin learns that the account's rows must go.
type LogoutWatch struct {
	store.DeviceContainer
	core *Core
}

// DeleteDevice deletes the device in whatsmeow's store, then the plugin's
// rows of that account (and nothing else).
func (w *LogoutWatch) DeleteDevice(ctx context.Context, device *store.Device) error {
	var jid types.JID
	if device != nil && device.ID != nil {
		jid = *device.ID
	}
	err := w.DeviceContainer.DeleteDevice(ctx, device)
	if err == nil && !w.core.closed.Load() {
		w.core.connGen.Add(1)
		w.core.loggedOut.Store(true)
		w.core.forgetAccount(ctx, jid)
	}
	return err
}
