package hooks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/sqlstore"
)

// Adoption: the plugin joins bridges that already ran whatsmeow alone, and
// can leave them again, without a token being lost either way.
//
//   - On every bind to an account, what whatsmeow's own token table holds
//     beyond the plugin's tables is imported into them, in the background.
//     Until that finishes, a cold read also asks whatsmeow's store, so the
//     first reply to an existing contact carries its newest token.
//   - A failure of the plugin's store never stops a token from reaching
//     whatsmeow's: it is written there regardless, and taken over later.
//   - Every token the plugin stores is written through to whatsmeow's store
//     with its right timestamp, so removing the plugin loses nothing.
//   - Client.Logout deletes the device through Store.Container, which emits
//     no event in whatsmeow 2025-12; a wrapper there forgets the account.

// startImport starts a pass over whatsmeow's token table for the account
// (see runImport), unless one is running, or this bind's pass already
// finished and nothing was written to whatsmeow's store alone since.
// Every bind starts one: while the plugin was out (after Close, with the
// Enable line removed, or during an outage of its database) whatsmeow may
// have stored newer tokens alone.
func (c *Core) startImport(acc *accountState) {
	if acc.imported.Load() && !acc.behind.Load() {
		return
	}
	if !acc.importing.CompareAndSwap(false, true) {
		return
	}
	c.goBackground(func(ctx context.Context) {
		defer acc.importing.Store(false)
		c.runImport(ctx, acc)
	})
}

// runImport takes over, batch by batch, every row of whatsmeow's token
// table that holds more than the plugin's (a newer token, or a newer sender
// timestamp), under the checks every other path makes. Sends never wait on
// it: until it has finished, a cold read also asks whatsmeow's own store.
// A plugin database that does not hold whatsmeow's table leaves that
// fallback on for good, and each row a read finds there is taken over then
// (see adoptRow).
func (c *Core) runImport(ctx context.Context, acc *accountState) {
	acc.bulkMu.Lock()
	defer acc.bulkMu.Unlock()
	// Reads ask whatsmeow's store too until this pass has finished. A
	// write to whatsmeow's store alone from now on sets behind again, and
	// the next connect runs another pass.
	acc.imported.Store(false)
	acc.behind.Store(false)
	start := time.Now()
	cutoff := acc.policy.Load().Timing.ReceiverCutoff(c.nowUnix())
	var rejects importRejects
	result, err := acc.store.ImportWhatsmeowTokens(ctx, cutoff, func(ctx context.Context, batch sqlstore.ImportBatch) error {
		return c.importBatch(ctx, acc, batch, rejects.add)
	})
	if rejects.count > 0 {
		c.log.Warn().Err(rejects.first).Int("rows", rejects.count).
			Msg("Skipped whatsmeow's privacy tokens that fail the plugin's checks; the first is named")
	}
	switch {
	case errors.Is(err, sqlstore.ErrWhatsmeowNotVisible):
		if _, seen := c.logOnce.LoadOrStore("import-elsewhere", struct{}{}); !seen {
			c.log.Info().Stringer("account", acc.jid).
				Msg("whatsmeow's token table is not in the plugin's database; reads keep asking whatsmeow's store")
		}
	case err != nil:
		// Reads keep asking whatsmeow's store meanwhile; the next connect
		// tries again.
		acc.behind.Store(true)
		c.metrics.dbError("import")
		c.warnOnce("import", err, "Failed to import whatsmeow's privacy tokens; will retry on the next connect")
	default:
		c.clearWarned("import")
		acc.imported.Store(true)
		c.log.Info().Stringer("account", acc.jid).Int64("rows", result.Rows).Int("batches", result.Batches).
			Dur("took", time.Since(start)).Msg("Imported whatsmeow's privacy tokens")
	}
}

// importRejects counts the rows of whatsmeow's a pass refused, for one log
// line per pass rather than one per row.
type importRejects struct {
	count int
	first error
}

func (r *importRejects) add(err error) {
	if r.count == 0 {
		r.first = err
	}
	r.count++
}

// importBatch stores one batch of whatsmeow's rows in the plugin's tables,
// in one transaction: each token under the checks every other path makes
// (size, a timestamp not in the future, a contact that can hold a token),
// keyed under the LID when known, and written monotonically; sender
// timestamps only move forward. Tokens expired at the receiver cutoff are
// left behind. It is the one write an import makes, batch after batch.
//
// The rows that are their own key and pass go in the database-side copy of
// the batch (batch.Copy); the others, and all of them when there is no copy
// (a row a read found, see adoptRow), are written from here.
func (c *Core) importBatch(ctx context.Context, acc *accountState, batch sqlstore.ImportBatch, reject func(error)) error {
	now := c.nowUnix()
	cutoff := acc.policy.Load().Timing.ReceiverCutoff(now)
	rows := make([]sqlstore.WhatsmeowToken, 0, len(batch.Rows))
	jids := make([]types.JID, 0, len(batch.Rows))
	var except []string
	for _, row := range batch.Rows {
		jid, err := types.ParseJID(row.Contact)
		if err == nil && row.TokenNewer {
			err = c.checkToken(jid, row.Token, row.TokenTS)
		}
		if err != nil {
			reject(fmt.Errorf("whatsmeow's row for %q: %w", row.Contact, err))
			except = append(except, row.Contact)
			continue
		}
		rows, jids = append(rows, row), append(jids, jid)
	}
	keys := c.resolveKeys(ctx, jids)
	own := c.own()
	copied := batch.Copyable()
	var writes []sqlstore.TokenWrite
	var senders []sqlstore.SenderWrite
	for i, row := range rows {
		// The contact is checked above; its key must pass too (see
		// resolveTokens).
		if own.mapsToOwn(jids[i], keys[i]) {
			reject(fmt.Errorf("whatsmeow's row for %s: the contact maps to our own account", jids[i]))
			except = append(except, row.Contact)
			continue
		}
		valid := row.TokenNewer && row.TokenTS >= cutoff
		if copied && valid && keys[i].String() == row.Contact {
			continue
		}
		except = append(except, row.Contact)
		if valid {
			writes = append(writes, sqlstore.TokenWrite{Contact: keys[i], Token: row.Token, TokenTS: row.TokenTS, SenderTS: row.SenderTS})
		} else if row.SenderTS > now+maxFutureSkew {
			reject(fmt.Errorf("whatsmeow's row for %s has a sender timestamp %d in the future", jids[i], row.SenderTS))
		} else if row.SenderTS > 0 {
			senders = append(senders, sqlstore.SenderWrite{Contact: keys[i], TS: row.SenderTS})
		}
	}
	err := acc.store.InTxn(ctx, func(ctx context.Context) error {
		if copied && len(except) < len(batch.Rows) {
			if err := batch.Copy(ctx, sqlstore.TokenChecks{LatestTS: now + maxFutureSkew, MaxSize: MaxTokenSize}, except...); err != nil {
				return err
			}
		}
		if _, err := acc.store.PutTokens(ctx, writes...); err != nil {
			return err
		}
		return acc.store.PutSenderTimestamps(ctx, senders...)
	})
	// Committed or not, what the cache holds for these contacts is read
	// again on its next use.
	c.cacheStale(keys...)
	return err
}

// innerRow reads whatsmeow's own store for a contact while this bind's
// import has not finished (for good, when whatsmeow's table is not in the
// plugin's database), or a token went to whatsmeow's store alone since, as
// one more row to merge. A failure only logs: the plugin's own rows still
// decide.
func (c *Core) innerRow(ctx context.Context, acc *accountState, key types.JID) *sqlstore.Entry {
	if acc.imported.Load() && !acc.behind.Load() {
		return nil
	}
	return c.whatsmeowRow(ctx, key)
}

// whatsmeowRow is what whatsmeow's own store holds for a contact, as a row
// to merge, or nil. A row that fails the checks every stored token passes
// (a timestamp far in the future would win every comparison forever) is not
// used.
func (c *Core) whatsmeowRow(ctx context.Context, key types.JID) *sqlstore.Entry {
	inner := c.innerStore()
	if inner == nil {
		return nil
	}
	token, err := inner.GetPrivacyToken(ctx, key)
	if err != nil {
		c.warnOnce("inner-read", err, "Failed to read whatsmeow's own privacy token store")
		return nil
	}
	if token == nil || len(token.Token) == 0 {
		return nil
	}
	ts := token.Timestamp.Unix()
	if err := c.checkToken(key, token.Token, ts); err != nil {
		c.log.Debug().Err(err).Msg("Ignored whatsmeow's own row for a contact")
		return nil
	}
	return &sqlstore.Entry{Contact: key, Token: token.Token, TokenTS: ts}
}

// adoptRow takes over, in the background, a row of whatsmeow's that a read
// found to hold a newer token than the plugin's rows: the way tokens
// whatsmeow stored alone reach the plugin's tables when the import cannot
// see whatsmeow's table. At most one adoption per contact runs at a time.
func (c *Core) adoptRow(acc *accountState, row *sqlstore.Entry) {
	key := row.Contact.ToNonAD()
	if _, running := c.adopting.LoadOrStore(key, struct{}{}); running {
		return
	}
	c.goBackground(func(ctx context.Context) {
		defer c.adopting.Delete(key)
		batch := sqlstore.ImportBatch{Rows: []sqlstore.WhatsmeowToken{{Contact: key.String(), Token: row.Token, TokenTS: row.TokenTS, TokenNewer: true}}}
		err := c.importBatch(ctx, acc, batch, func(err error) {
			c.log.Debug().Err(err).Msg("Did not take over whatsmeow's row for a contact")
		})
		if err != nil {
			c.warnOnce("adopt", err, "Failed to take over a privacy token from whatsmeow's own store; reads keep asking it")
			return
		}
		c.clearWarned("adopt")
	})
}

// writeThrough copies tokens the plugin stored into whatsmeow's own store,
// so that whatsmeow alone (after Close, or with the Enable line removed)
// still holds every token. It never fails the plugin's write: a failure is
// logged once until a write-through succeeds again.
func (c *Core) writeThrough(ctx context.Context, writes []sqlstore.TokenWrite) {
	if len(writes) == 0 {
		return
	}
	if err := c.writeThroughInner(ctx, writes); err != nil {
		c.warnOnce("write-through", err, "Failed to copy privacy tokens to whatsmeow's own store; the plugin's tables still hold them")
		return
	}
	c.clearWarned("write-through")
}

// writeThroughInner writes tokens to whatsmeow's own store, in the transaction ctx
// holds when that store joins it (see storeThrough).
func (c *Core) writeThroughInner(ctx context.Context, writes []sqlstore.TokenWrite) error {
	if len(writes) == 0 {
		return nil
	}
	tokens := make([]store.PrivacyToken, len(writes))
	for i, write := range writes {
		tokens[i] = store.PrivacyToken{User: write.Contact, Token: write.Token, Timestamp: time.Unix(write.TokenTS, 0)}
	}
	return c.innerStore().PutPrivacyTokens(ctx, tokens...)
}

// logoutWatch wraps Client.Store.Container: Client.Logout in whatsmeow
// 2025-12 deletes the device through it and emits no LoggedOut event, so
// this is where the plugin learns that the account's rows must go.
type logoutWatch struct {
	store.DeviceContainer
	core *Core
}

// DeleteDevice deletes the device in whatsmeow's store, then the plugin's
// rows of that account (and nothing else).
func (w *logoutWatch) DeleteDevice(ctx context.Context, device *store.Device) error {
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
