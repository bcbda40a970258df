package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.mau.fi/whatsmeow/types"
	"golang.org/x/sync/singleflight"

	"github.com/tctoken/tctoken/sqlstore"
)

// The ingest pipeline: every token a contact issued to us, whatever brought
// it (whatsmeow's write, a history sync, an issuance answer, the pass over
// whatsmeow's table), is received here and goes receive -> check -> resolve
// -> store -> write through -> cache.

// receivedTokens is the state of the tokens contacts issued to us: the
// interposer's inner store, the cache of merged entries, what history syncs
// said, the takeovers of whatsmeow's rows, presence and LID lookups.
type receivedTokens struct {
	// inner is whatsmeow's own token store, behind the interposer. It is
	// replaced when pairing gives the device its SQL stores (interpose).
	inner atomic.Pointer[innerTokens]
	cache *lru.Cache[types.JID, *cachedEntry]
	// cacheMu orders "no write since my read began, so cache it" against
	// "a write happened, drop the entry", so a stale read is never cached.
	cacheMu  sync.Mutex
	writeGen uint64
	history  *historyFacts
	// subscribed and presence: the contacts whose presence we follow, to
	// re-subscribe with a new token, and the updates waiting to be recorded.
	subscribed *lru.Cache[types.JID, types.JID]
	presence   presenceQueue
	// First-contact LID lookups (lidlookup.go): one in flight per number,
	// and numbers without a LID remembered for a while.
	lidLookups  singleflight.Group
	unknownLIDs *ttlSet
	// adopting holds the contacts whose row in whatsmeow's store is being
	// taken over (adopt.go), one at a time each.
	adopting sync.Map
	// beforeTokenWrite, when set by a test, runs between the history-fact
	// check and the database write of every token batch, so that tests can
	// force the interleavings of whatsmeow's write and the history handler.
	beforeTokenWrite func(source string)
}

// errOnlyInWhatsmeow marks a token write that failed in the plugin's tables
// but reached whatsmeow's own store.
var errOnlyInWhatsmeow = errors.New("held by whatsmeow's own store only")

// maxFutureSkew is how far ahead of our clock a token timestamp may be. A
// token from far in the future would win every monotonic comparison forever.
const maxFutureSkew = 24 * 60 * 60

// receiveTokens is how every token a contact issued to us gets stored,
// whatever brought it: checked, resolved to the LID when known, corrected
// for whatsmeow's history-sync timestamp, stored monotonically in one
// batch, written through to whatsmeow's store and cached. A contact we are
// subscribed to gets its presence subscription re-sent with the new token.
func (c *Core) receiveTokens(ctx context.Context, acc *accountState, source string, tokens []ReceivedToken) error {
	writes := c.resolveTokens(ctx, source, tokens)
	if len(writes) == 0 {
		return nil
	}
	if c.beforeTokenWrite != nil {
		c.beforeTokenWrite(source)
	}
	var result storeResult
	_, err := c.storeThrough(ctx, acc, func(ctx context.Context, _ bool) (through []sqlstore.TokenWrite, err error) {
		result, err = c.storeWrites(ctx, acc, writes)
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
		if innerErr := c.writeThroughInner(ctx, lastPerContact(writes)); innerErr != nil {
			return fmt.Errorf("%w; whatsmeow's own store failed too: %w", err, innerErr)
		}
		acc.behind.Store(true)
		c.cacheWrites(writes)
		return fmt.Errorf("%w (%w)", err, errOnlyInWhatsmeow)
	}
	c.cacheTokens(source, result)
	return nil
}

// resolveTokens checks received tokens and resolves each to the key its row
// lives under (the LID when
// known). A rejected token is logged, never stored.
func (c *Core) resolveTokens(ctx context.Context, source string, tokens []ReceivedToken) []sqlstore.TokenWrite {
	return c.resolveTokensKeyed(ctx, source, tokens, nil)
}

// resolveTokensKeyed is resolveTokens for a caller that already resolved
// the tokens' keys (known[i] is tokens[i]'s; nil: none is known): a history
// blob resolves its conversations once, and its tokens are among them.
func (c *Core) resolveTokensKeyed(ctx context.Context, source string, tokens []ReceivedToken, known []types.JID) []sqlstore.TokenWrite {
	valid := make([]ReceivedToken, 0, len(tokens))
	jids := make([]types.JID, 0, len(tokens))
	var keys []types.JID
	if known != nil {
		keys = make([]types.JID, 0, len(tokens))
	}
	for i, token := range tokens {
		if err := c.checkToken(token.JID, token.Token, token.Timestamp); err != nil {
			c.log.Warn().Err(err).Str("source", source).Msg("Rejected a privacy token")
			continue
		}
		valid = append(valid, token)
		jids = append(jids, token.JID)
		if known != nil {
			keys = append(keys, known[i])
		}
	}
	if len(valid) == 0 {
		return nil
	}
	if keys == nil {
		keys = c.resolveKeys(ctx, jids)
	}
	own := c.own()
	writes := make([]sqlstore.TokenWrite, 0, len(valid))
	for i, token := range valid {
		// The contact is checked above; its key must pass too: a phone
		// number mapped to our own LID (by a hostile history blob) would
		// file the token under our own account.
		if own.mapsToOwn(token.JID, keys[i]) {
			c.log.Warn().Stringer("contact", token.JID).Str("source", source).Msg("Rejected a privacy token: the contact maps to our own account")
			continue
		}
		ts := c.correctHistoryTimestamp(keys[i], token.Token, token.Timestamp)
		writes = append(writes, sqlstore.TokenWrite{Contact: keys[i], Token: token.Token, TokenTS: ts})
	}
	return writes
}

// storeResult is what one batch of token writes did.
type storeResult struct {
	// writes is the batch as it was written, a copy of the caller's: a
	// late history mend may since have corrected a timestamp in it.
	// applied[i] says whether writes[i] changed a row, and through holds
	// the writes that did, for whatsmeow's store and the cache.
	writes  []sqlstore.TokenWrite
	applied []bool
	through []sqlstore.TokenWrite
	// mended are the keys whose timestamp a mend moved back.
	mended []types.JID
}

// storeWrites writes a batch of tokens to the plugin's tables: the
// database part of receiveTokens, safe to run again after a rollback.
func (c *Core) storeWrites(ctx context.Context, acc *accountState, writes []sqlstore.TokenWrite) (storeResult, error) {
	result := storeResult{writes: slices.Clone(writes)}
	var err error
	if result.applied, err = acc.store.PutTokens(ctx, result.writes...); err != nil {
		return storeResult{}, err
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

// cacheTokens brings the cache up to date after a batch of token writes
// committed, logs them, and re-sends presence subscriptions with the new
// tokens.
func (c *Core) cacheTokens(source string, result storeResult) {
	c.cacheWrites(result.through)
	if len(result.mended) > 0 {
		// A mend moves a row's timestamp back, which the in-place update
		// cannot express: read those again.
		c.cacheStale(result.mended...)
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
	if why := ineligible(contact, c.own()); why != "" {
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
