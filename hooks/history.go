package hooks

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/sqlstore"
)

// HandleHistorySync is the entry point for a bridge that downloads history
// blobs itself (whatsmeow's ManualHistorySyncDownload), whose
// events.HistorySync never reaches the plugin: it captures the NCT salt
// backfill and the conversation tokens as the automatic path does. It runs
// synchronously and is safe to call for a blob the plugin also saw as an
// event: every write is monotonic.
func (c *Core) HandleHistorySync(ctx context.Context, data *waHistorySync.HistorySync) {
	if c.closed.Load() {
		return
	}
	c.handleHistorySync(ctx, data)
}

// handleHistorySync stores the conversation tokens of a history blob the
// right way (token and sender timestamps apart, under the LID, never older
// than what is stored), mends what whatsmeow 2025-12 wrote for the same
// conversations, and picks up the NCT salt backfill.
func (c *Core) handleHistorySync(ctx context.Context, data *waHistorySync.HistorySync) {
	if data == nil {
		return
	}
	if salt, ok := c.compat.HistorySalt(data); ok {
		c.applyHistorySalt(ctx, salt)
	}
	acc, err := c.acct(ctx)
	if err != nil {
		return
	}
	// whatsmeow stores the blob's PN->LID pairs in a goroutine that may not
	// have run yet; storing them first lets every token below be keyed
	// under its LID. Writing what whatsmeow writes anyway changes nothing.
	own := c.own()
	var mappings []store.LIDMapping
	for _, mapping := range data.GetPhoneNumberToLidMappings() {
		pn, errPN := types.ParseJID(mapping.GetPnJID())
		lid, errLID := types.ParseJID(mapping.GetLidJID())
		// A pair that names our own account is no contact's: it would file
		// someone's token under our own LID.
		if errPN == nil && errLID == nil {
			if err := errors.Join(sqlstore.CheckContact(pn), sqlstore.CheckContact(lid)); err != nil {
				// One such pair would fail the whole batch of mappings
				// on PostgreSQL, and every token keyed by LID with it.
				c.log.Warn().Err(err).Msg("Ignored a history-sync phone number to LID mapping")
				continue
			}
		}
		if errPN == nil && errLID == nil && pn.Server == types.DefaultUserServer && lid.Server == types.HiddenUserServer &&
			!own.Is(pn) && !own.mapsToOwn(pn, lid) {
			mappings = append(mappings, store.LIDMapping{LID: lid.ToNonAD(), PN: pn.ToNonAD()})
		}
	}
	if len(mappings) > 0 {
		if err = c.cli.Store.LIDs.PutManyLIDMappings(ctx, mappings); err != nil {
			c.log.Warn().Err(err).Int("mappings", len(mappings)).Msg("Failed to store history-sync LID mappings; tokens may be keyed by phone number")
		}
	}
	now := c.nowUnix()
	// Sized for the whole blob up front: a blob of thousands of
	// conversations otherwise regrows each slice a dozen times.
	n := len(data.GetConversations())
	convs := make([]*waHistorySync.Conversation, 0, n)
	chats := make([]types.JID, 0, n)
	for _, conv := range data.GetConversations() {
		chat, err := types.ParseJID(conv.GetID())
		if err != nil || ineligible(chat, own) != "" {
			continue
		}
		if err = sqlstore.CheckContact(chat); err != nil {
			// Kept out of the blob's batches: on PostgreSQL it would fail
			// them, and every other conversation's token with them.
			c.log.Warn().Err(err).Msg("Ignored a history-sync conversation")
			continue
		}
		convs = append(convs, conv)
		chats = append(chats, chat.ToNonAD())
		// The fact under the phone number goes in before the lookup below
		// reads which numbers hold a row (see the mends below).
		if fact, ok := misfiledFact(chat, conv); ok {
			c.history.Add(chat.ToNonAD(), fact)
		}
	}
	// One LID lookup for the whole blob (the mappings above are in by now),
	// which also reads which phone numbers hold a row.
	chatKeys, heldPN := c.resolveKeysHeld(ctx, chats, true)
	tokens := make([]ReceivedToken, 0, len(convs))
	tokenKeys := make([]types.JID, 0, len(convs))
	keys := make([]types.JID, 0, 2*len(convs))
	mends := make([]sqlstore.HistoryMend, 0, len(convs))
	senderTimes := make([]sqlstore.SenderWrite, 0, len(convs))
	for i, conv := range convs {
		chat, key := chats[i], chatKeys[i]
		if own.mapsToOwn(chat, key) {
			// A mapping stored earlier ties the chat to our own account.
			continue
		}
		token, tokenTS, senderTS := conv.GetTcToken(), int64(conv.GetTcTokenTimestamp()), int64(conv.GetTcTokenSenderTimestamp())
		switch {
		case senderTS > now+maxFutureSkew:
			c.log.Warn().Stringer("contact", key).Int64("sender_ts", senderTS).
				Msg("Ignored a history-sync sender timestamp in the future")
		case senderTS > 0:
			senderTimes = append(senderTimes, sqlstore.SenderWrite{Contact: key, TS: senderTS})
			keys = append(keys, key)
		}
		if len(token) == 0 {
			continue
		}
		tokens = append(tokens, ReceivedToken{JID: chat, Token: token, Timestamp: tokenTS})
		tokenKeys = append(tokenKeys, key)
		fact, ok := misfiledFact(chat, conv)
		if !ok {
			continue
		}
		// whatsmeow 2025-12 writes the tokens of PN chats, under the LID
		// when the interposer finds it, else under the PN: remember the
		// fact under both keys, and mend the LID's row, and the PN's when
		// the lookup found one there.
		mend := sqlstore.HistoryMend{Contact: key, Token: token, WrongTS: senderTS, RightTS: tokenTS}
		if key != chat {
			c.history.Add(key, fact)
			mends = append(mends, mend)
			keys = append(keys, key)
		}
		// A number the lookup found no row under needs no mend: the fact
		// went in before the lookup, so whatsmeow's write there, committed
		// after the lookup read, finds the fact and mends itself
		// (mendLateHistoryFacts).
		if heldPN == nil || heldPN[chat] {
			mend.Contact = chat
			mends = append(mends, mend)
		}
		keys = append(keys, chat)
	}
	// One transaction for the whole blob when whatsmeow's store shares the
	// plugin's database (the tokens, the sender timestamps, the mends and the
	// write-through of all of them), else a constant number of them.
	defer c.cacheStale(keys...)
	writes := c.resolveTokensKeyed(ctx, "history sync", tokens, tokenKeys)
	// A conversation's sender timestamp goes in the same statement as its
	// token: one write per row instead of two. The rest (no token, or one
	// rejected) are written on their own.
	senderCount := len(senderTimes)
	if len(writes) > 0 && len(senderTimes) > 0 {
		senderOf := make(map[types.JID]int64, len(senderTimes))
		for _, st := range senderTimes {
			senderOf[st.Contact] = max(senderOf[st.Contact], st.TS)
		}
		for i := range writes {
			if ts, ok := senderOf[writes[i].Contact]; ok {
				writes[i].SenderTS = ts
				delete(senderOf, writes[i].Contact)
			}
		}
		senderTimes = senderTimes[:0]
		for contact, ts := range senderOf {
			senderTimes = append(senderTimes, sqlstore.SenderWrite{Contact: contact, TS: ts})
		}
	}
	if len(writes) > 0 && c.beforeTokenWrite != nil {
		c.beforeTokenWrite("history sync")
	}
	var result storeResult
	var mended []sqlstore.TokenWrite
	_, err = c.storeThrough(ctx, acc, func(ctx context.Context, joined bool) ([]sqlstore.TokenWrite, error) {
		result, mended = storeResult{}, nil
		if len(writes) > 0 {
			var err error
			if result, err = c.storeWrites(ctx, acc, writes); err != nil {
				return nil, fmt.Errorf("store %d history-sync privacy tokens (first from %s): %w", len(writes), writes[0].Contact, err)
			}
		}
		// A row this write just set to the real timestamp holds no
		// misfiled one: whatsmeow's write, had it landed first, would have
		// been newer and kept this one out, and one landing later corrects
		// itself (see mendLateHistoryFacts). Only the other rows need a
		// mend statement.
		rightNow := make(map[types.JID]int64, len(result.through))
		for _, write := range result.through {
			rightNow[write.Contact] = write.TokenTS
		}
		pending := slices.DeleteFunc(slices.Clone(mends), func(m sqlstore.HistoryMend) bool {
			ts, ok := rightNow[m.Contact]
			return ok && ts == m.RightTS
		})
		if err := acc.store.PutSenderTimestamps(ctx, senderTimes...); err != nil {
			if joined {
				return nil, err
			}
			c.log.Err(err).Int("contacts", len(senderTimes)).Msg("Failed to store history-sync sender timestamps")
			return result.through, nil
		}
		changed, err := acc.store.MendHistoryTimestamps(ctx, pending...)
		if err != nil {
			if joined {
				return nil, err
			}
			c.log.Err(err).Int("contacts", len(pending)).Msg("Failed to mend history-sync token timestamps")
		}
		for i, m := range pending {
			if err == nil && changed[i] {
				mended = append(mended, sqlstore.TokenWrite{Contact: m.Contact, Token: m.Token, TokenTS: m.RightTS})
			}
		}
		return append(slices.Clone(result.through), mended...), nil
	})
	if err != nil {
		c.metrics.dbError("put_tokens")
		c.log.Err(err).Msg("Failed to store history-sync privacy tokens")
		return
	}
	if len(writes) > 0 {
		c.cacheTokens("history sync", result)
	}
	c.log.Debug().Int("tokens", len(tokens)).Int("sender_timestamps", senderCount).Int("mended", len(mended)).
		Msg("Stored history-sync privacy tokens")
}

// misfiledFact is what whatsmeow 2025-12 gets wrong about a conversation
// of a history blob, if anything: it files the tokens of chats keyed by
// phone number (only those) with our sender timestamp as the token
// timestamp. A chat keyed by LID, or one whose two timestamps agree, has
// nothing to mend (whatsmeow-head files the right timestamp).
func misfiledFact(chat types.JID, conv *waHistorySync.Conversation) (historyFact, bool) {
	token, tokenTS, senderTS := conv.GetTcToken(), int64(conv.GetTcTokenTimestamp()), int64(conv.GetTcTokenSenderTimestamp())
	if len(token) == 0 || senderTS <= 0 || senderTS == tokenTS || chat.Server != types.DefaultUserServer {
		return historyFact{}, false
	}
	return historyFact{token: token, tokenTS: tokenTS, senderTS: senderTS}, true
}
