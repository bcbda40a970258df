package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/sqlstore"
)

// errOnlyInWhatsmeow marks a token write that failed in the plugin's tables
// but reached whatsmeow's own store.
var errOnlyInWhatsmeow = errors.New("held by whatsmeow's own store only")

// maxFutureSkew is how far ahead of our clock a token timestamp may be. A
// token from far in the future would win every monotonic comparison forever.
const maxFutureSkew = 24 * 60 * 60

// TokenStore replaces Client.Store.PrivacyTokens, so that every read and
// write whatsmeow makes (messages, presence, profile pictures, group create,
// privacy_token notifications, history sync) goes through the plugin.
type TokenStore Core

var _ store.PrivacyTokenStore = (*TokenStore)(nil)

type pinKey struct{}

// pinned is a decision made by Plugin.SendMessage for one recipient, carried
// in the context so that whatsmeow's own tctoken read agrees with it.
type pinned struct {
	lid, pn  types.JID
	decision Decision
}

// GetPrivacyToken returns the token to attach for user, or nil. Only tokens
// valid now are returned. When Plugin.SendMessage pinned a decision for this
// recipient, that decision wins, so that a cstoken send never also carries a
// tctoken. Errors are logged and turned into "no token": a read failure must
// never fail a send.
func (s *TokenStore) GetPrivacyToken(ctx context.Context, user types.JID) (*store.PrivacyToken, error) {
	c := (*Core)(s)
	if c.closed.Load() {
		return c.innerStore().GetPrivacyToken(ctx, user)
	}
	if c.compat.Native() {
		return c.nativeGet(ctx, user), nil
	}
	user = user.ToNonAD()
	if pin, ok := ctx.Value(pinKey{}).(*pinned); ok && (user == pin.lid || user == pin.pn) {
		if pin.decision.Attach != AttachTCToken {
			return nil, nil
		}
		return &store.PrivacyToken{User: user, Token: pin.decision.Token}, nil
	}
	v, err := c.view(ctx, user)
	if err != nil {
		return nil, nil
	}
	policy := v.acc.policy.Load()
	if len(v.entry.token) == 0 || !policy.Timing.ReceivedTokenValid(v.entry.tokenTS, c.nowUnix()) {
		return nil, nil
	}
	return &store.PrivacyToken{User: v.key, Token: v.entry.token}, nil
}

// PutPrivacyTokens stores tokens whatsmeow received: from privacy_token
// notifications and from history sync. Each token is validated, keyed under
// the contact's LID when known, and written monotonically. Bad tokens are
// skipped with a log line; the rest are still stored.
func (s *TokenStore) PutPrivacyTokens(ctx context.Context, tokens ...store.PrivacyToken) error {
	c := (*Core)(s)
	if c.closed.Load() {
		return c.innerStore().PutPrivacyTokens(ctx, tokens...)
	}
	acc, err := c.acct(ctx)
	if err != nil {
		// Without the account's state (its database failing at bind),
		// whatsmeow's own store still takes the tokens, as it would alone;
		// the pass over whatsmeow's table at the next bind takes them over.
		return c.innerStore().PutPrivacyTokens(ctx, tokens...)
	}
	var incoming []ReceivedToken
	if c.compat.Native() {
		incoming = c.nativePut(ctx, acc, tokens)
	} else {
		incoming = make([]ReceivedToken, len(tokens))
		for i, token := range tokens {
			incoming[i] = ReceivedToken{JID: token.User, Token: token.Token}
			if !token.Timestamp.IsZero() {
				incoming[i].Timestamp = token.Timestamp.Unix()
			}
		}
	}
	// whatsmeow logs the error it gets back on every attempt; the plugin's
	// own log says it once per outage, with what it does about it.
	if err = c.storeTokens(ctx, acc, "whatsmeow", incoming); errors.Is(err, errOnlyInWhatsmeow) {
		// Stored as whatsmeow alone would have: nothing for it to retry.
		c.warnOnce("token-store", err, "Failed to store privacy tokens in the plugin's tables; whatsmeow's own store holds them, and sends carry them")
		return nil
	} else if err != nil {
		c.warnOnce("token-store", err, "Failed to store privacy tokens; sends keep the last known ones")
		return err
	}
	c.clearWarned("token-store")
	return nil
}

// storeTokens is how every token a contact issued to us gets stored,
// whatever brought it: validated, keyed under the LID when known, corrected
// for whatsmeow's history-sync timestamp, written monotonically in one
// batch. A contact we are subscribed to gets its presence subscription
// re-sent with the new token.
func (c *Core) storeTokens(ctx context.Context, acc *accountState, source string, tokens []ReceivedToken) error {
	_, err := c.storeTokensApplied(ctx, acc, source, tokens)
	return err
}

// storeTokensApplied is storeTokens that also returns the writes that
// changed a row, with the timestamps they left there.
func (c *Core) storeTokensApplied(ctx context.Context, acc *accountState, source string, tokens []ReceivedToken) ([]sqlstore.TokenWrite, error) {
	writes := c.tokenWrites(ctx, source, tokens)
	if len(writes) == 0 {
		return nil, nil
	}
	if c.beforeTokenWrite != nil {
		c.beforeTokenWrite(source)
	}
	var result tokenWriteResult
	_, err := c.writeJoined(ctx, acc, func(ctx context.Context, _ bool) (through []sqlstore.TokenWrite, err error) {
		result, err = c.putTokenWrites(ctx, acc, writes)
		return result.through, err
	})
	if err != nil {
		c.metrics.dbError("put_tokens")
		err = fmt.Errorf("store %d privacy tokens from %s (first from %s): %w", len(writes), source, writes[0].Contact, err)
		// The batch rolled back in the plugin's tables. whatsmeow's own
		// store takes the tokens regardless, as it would without the
		// plugin; the cache carries them to the next send, and the next
		// pass over whatsmeow's table (at the next connect) takes them
		// over.
		if innerErr := c.putInner(ctx, lastPerContact(writes)); innerErr != nil {
			return nil, fmt.Errorf("%w; whatsmeow's own store failed too: %w", err, innerErr)
		}
		acc.behind.Store(true)
		c.wroteTokens(writes)
		return nil, fmt.Errorf("%w (%w)", err, errOnlyInWhatsmeow)
	}
	c.storedTokens(source, result)
	return result.through, nil
}

// tokenWrites validates received tokens and keys each under its LID when
// known. A rejected token is logged, never written.
func (c *Core) tokenWrites(ctx context.Context, source string, tokens []ReceivedToken) []sqlstore.TokenWrite {
	valid := make([]ReceivedToken, 0, len(tokens))
	jids := make([]types.JID, 0, len(tokens))
	for _, token := range tokens {
		if err := c.checkToken(token.JID, token.Token, token.Timestamp); err != nil {
			c.log.Warn().Err(err).Str("source", source).Msg("Rejected a privacy token")
			continue
		}
		valid = append(valid, token)
		jids = append(jids, token.JID)
	}
	if len(valid) == 0 {
		return nil
	}
	keys := c.storageKeys(ctx, jids)
	own := c.own()
	writes := make([]sqlstore.TokenWrite, 0, len(valid))
	for i, token := range valid {
		// The contact is checked above; its key must pass too: a phone
		// number mapped to our own LID (by a hostile history blob) would
		// file the token under our own account.
		if why := Ineligible(keys[i], own); why != "" {
			c.log.Warn().Stringer("contact", token.JID).Str("source", source).Msg("Rejected a privacy token: the contact maps to " + why)
			continue
		}
		ts := c.correctHistoryTimestamp(keys[i], token.Token, token.Timestamp)
		writes = append(writes, sqlstore.TokenWrite{Contact: keys[i], Token: token.Token, TokenTS: ts})
	}
	return writes
}

// tokenWriteResult is what one batch of token writes did.
type tokenWriteResult struct {
	// writes are the writes as they went to the database (a late history
	// mend corrects a timestamp), applied says which changed a row, and
	// through are those, for whatsmeow's store and the cache.
	writes  []sqlstore.TokenWrite
	applied []bool
	through []sqlstore.TokenWrite
	// mended are the keys whose timestamp a mend moved back.
	mended []types.JID
}

// putTokenWrites writes a batch of tokens to the plugin's tables: the
// database part of storeTokens, safe to run again after a rollback.
func (c *Core) putTokenWrites(ctx context.Context, acc *accountState, writes []sqlstore.TokenWrite) (tokenWriteResult, error) {
	result := tokenWriteResult{writes: slices.Clone(writes)}
	var err error
	if result.applied, err = acc.store.PutTokens(ctx, result.writes...); err != nil {
		return tokenWriteResult{}, err
	}
	result.mended = c.mendLateHistoryFacts(ctx, acc, result.writes, result.applied)
	result.through = make([]sqlstore.TokenWrite, 0, len(result.writes))
	for i, write := range result.writes {
		if result.applied[i] {
			result.through = append(result.through, write)
		}
	}
	return result, nil
}

// storedTokens brings the cache up to date after a batch of token writes
// committed, logs them, and re-sends presence subscriptions with the new
// tokens.
func (c *Core) storedTokens(source string, result tokenWriteResult) {
	c.wroteTokens(result.through)
	if len(result.mended) > 0 {
		// A mend moves a row's timestamp back, which the in-place update
		// cannot express: read those again.
		c.wrote(result.mended...)
	}
	for i, write := range result.writes {
		if !result.applied[i] {
			c.log.Debug().Stringer("contact", write.Contact).Int64("token_ts", write.TokenTS).Str("source", source).
				Msg("Kept the stored privacy token: the incoming one is not newer")
			continue
		}
		if e := c.log.Debug(); e.Enabled() {
			e.Stringer("contact", write.Contact).Int64("token_ts", write.TokenTS).Str("source", source).
				Str("token", ShortHash(write.Token)).Msg("Stored privacy token")
		}
		c.resubscribePresence(write.Contact)
	}
}

// checkToken rejects what no real server sends. The error names the contact
// and what was wrong, never the bytes.
func (c *Core) checkToken(contact types.JID, token []byte, ts int64) error {
	// Before anything reads or writes the database with it: on
	// PostgreSQL such a JID fails the statement, and with it the batch.
	if err := sqlstore.CheckContact(contact); err != nil {
		return fmt.Errorf("token from a contact that cannot be stored: %w", err)
	}
	// With our own account known: a token "from" us is never stored.
	if why := Ineligible(contact, c.own()); why != "" {
		return fmt.Errorf("token from %s (%s), which cannot issue tokens", contact, why)
	}
	switch {
	case len(token) == 0:
		return fmt.Errorf("token from %s is empty", contact)
	case len(token) > MaxTokenSize:
		return fmt.Errorf("token from %s is %d bytes, over the %d-byte limit", contact, len(token), MaxTokenSize)
	case ts <= 0:
		return fmt.Errorf("token from %s has no valid timestamp (%d)", contact, ts)
	case ts > c.nowUnix()+maxFutureSkew:
		return fmt.Errorf("token from %s has a timestamp %d in the future", contact, ts)
	}
	return nil
}

// correctHistoryTimestamp undoes whatsmeow 2025-12's history-sync mistake:
// when both timestamps were present it files the sender timestamp as the
// token timestamp. If our own history handler saw the same token for this
// contact, use the real token timestamp instead.
func (c *Core) correctHistoryTimestamp(key types.JID, token []byte, ts int64) int64 {
	fact, ok := c.history.Get(key)
	if ok && fact.senderTS == ts && fact.tokenTS != ts && bytes.Equal(fact.token, token) {
		return fact.tokenTS
	}
	return ts
}

// mendLateHistoryFacts closes the race between whatsmeow's history write and
// the plugin's history handler. The write checked the history facts before
// it committed; the handler records its facts before it mends. If the facts
// arrived in between, the handler's mend ran before this row existed, so the
// write mends itself now. Either the handler's mend sees the committed row
// or this re-check sees the facts: no interleaving is left uncorrected.
func (c *Core) mendLateHistoryFacts(ctx context.Context, acc *accountState, writes []sqlstore.TokenWrite, applied []bool) (mendedKeys []types.JID) {
	for i, write := range writes {
		if !applied[i] {
			continue
		}
		realTS := c.correctHistoryTimestamp(write.Contact, write.Token, write.TokenTS)
		if realTS == write.TokenTS {
			continue
		}
		mended, err := acc.store.MendHistoryTimestamp(ctx, write.Contact, write.Token, write.TokenTS, realTS)
		if err != nil {
			c.log.Err(err).Stringer("contact", write.Contact).Msg("Failed to mend a history-sync token timestamp")
		} else if mended {
			writes[i].TokenTS = realTS
			mendedKeys = append(mendedKeys, write.Contact)
		}
	}
	return mendedKeys
}
