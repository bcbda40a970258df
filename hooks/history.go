package hooks

import (
	"context"

	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/sqlstore"
)

// handleHistorySync stores the conversation tokens of a history blob the
// right way (token and sender timestamps apart, under the LID, never older
// than what is stored), mends what whatsmeow 2025-12 wrote for the same
// conversations, and picks up the NCT salt backfill.
func (c *Core) handleHistorySync(ctx context.Context, data *waHistorySync.HistorySync) {
	if data == nil {
		return
	}
	if salt, ok := UnknownBytesField(data, historySyncNCTSaltField); ok {
		c.applyHistorySalt(ctx, salt)
	}
	acc, err := c.acct(ctx)
	if err != nil {
		return
	}
	// The blob's own PN->LID pairs: whatsmeow stores them in a goroutine that
	// may not have run yet.
	lidOf := make(map[types.JID]types.JID)
	for _, mapping := range data.GetPhoneNumberToLidMappings() {
		pn, errPN := types.ParseJID(mapping.GetPnJID())
		lid, errLID := types.ParseJID(mapping.GetLidJID())
		if errPN == nil && errLID == nil && lid.Server == types.HiddenUserServer {
			lidOf[pn.ToNonAD()] = lid.ToNonAD()
		}
	}
	own := c.own()
	var writes []sqlstore.TokenWrite
	var keys []types.JID
	type mend struct {
		keys            []types.JID
		token           []byte
		wrongTS, realTS int64
	}
	var mends []mend
	senderTimes := make(map[int64][]types.JID)
	for _, conv := range data.GetConversations() {
		chat, err := types.ParseJID(conv.GetID())
		if err != nil || Ineligible(chat, own) != "" {
			continue
		}
		chat = chat.ToNonAD()
		key, _, pn := c.resolve(ctx, chat)
		if lid, ok := lidOf[chat]; ok && key.Server != types.HiddenUserServer {
			key = lid
		}
		token, tokenTS, senderTS := conv.GetTcToken(), int64(conv.GetTcTokenTimestamp()), int64(conv.GetTcTokenSenderTimestamp())
		if senderTS > 0 {
			senderTimes[senderTS] = append(senderTimes[senderTS], key)
			keys = append(keys, key)
		}
		if len(token) == 0 {
			continue
		}
		if err := c.checkToken(chat, token, tokenTS); err != nil {
			c.log.Warn().Err(err).Msg("Rejected a privacy token from history sync")
			continue
		}
		writes = append(writes, sqlstore.TokenWrite{Contact: key, Token: token, TokenTS: tokenTS})
		keys = append(keys, key)
		if senderTS > 0 && senderTS != tokenTS {
			// whatsmeow files its write under the PN when it does not know
			// the LID yet: remember the fact under both keys.
			mendKeys := []types.JID{key}
			if !pn.IsEmpty() && pn != key {
				mendKeys = append(mendKeys, pn)
			}
			for _, mendKey := range mendKeys {
				c.history.Add(mendKey, historyFact{token: token, tokenTS: tokenTS, senderTS: senderTS})
			}
			mends = append(mends, mend{keys: mendKeys, token: token, wrongTS: senderTS, realTS: tokenTS})
		}
	}
	defer c.wrote(keys...)
	if len(writes) > 0 {
		if _, err := acc.store.PutTokens(ctx, writes...); err != nil {
			c.log.Err(err).Int("tokens", len(writes)).Msg("Failed to store history-sync privacy tokens")
			return
		}
	}
	for ts, contacts := range senderTimes {
		if err := acc.store.SetSenderTimestamps(ctx, ts, contacts...); err != nil {
			c.log.Err(err).Int("contacts", len(contacts)).Msg("Failed to store history-sync sender timestamps")
			return
		}
	}
	mended := 0
	for _, m := range mends {
		for _, key := range m.keys {
			changed, err := acc.store.MendHistoryTimestamp(ctx, key, m.token, m.wrongTS, m.realTS)
			if err != nil {
				c.log.Err(err).Stringer("contact", key).Msg("Failed to mend a history-sync token timestamp")
				continue
			}
			if changed {
				mended++
			}
		}
	}
	c.log.Debug().Int("tokens", len(writes)).Int("sender_timestamps", len(senderTimes)).Int("mended", mended).
		Msg("Stored history-sync privacy tokens")
}
