package hooks

import (
	"bytes"
	"context"
	"fmt"

	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/sqlstore"
)

// The per-contact cache: reading a contact through it, and keeping it right
// across writes, prunes and outages.

// cachedEntry is the merged stored state of one contact, as cached.
type cachedEntry struct {
	token    []byte
	tokenTS  int64
	senderTS int64
	// stale: a write may have changed the rows since this was read; the
	// next use reads again, and falls back to this if the read fails.
	stale bool
}

// contactView is what the plugin knows about one contact at one moment.
type contactView struct {
	acc          *accountState
	key, lid, pn types.JID
	entry        *cachedEntry
}

// holdsValidToken reports whether the contact's entry holds a token that is
// still valid at now under the account's policy.
func (v contactView) holdsValidToken(now int64) bool {
	return len(v.entry.token) > 0 && v.acc.policy.Load().Timing.ReceivedTokenValid(v.entry.tokenTS, now)
}

// view resolves a contact and reads its merged entry: at most one database
// read when not cached, none when cached.
func (c *Core) view(ctx context.Context, jid types.JID) (v contactView, err error) {
	if v.acc, err = c.acct(ctx); err != nil {
		return v, err
	}
	if lid := jid.ToNonAD(); lid.Server == types.HiddenUserServer {
		// A LID is its own key: a cached entry needs no trip through
		// whatsmeow's LID map (the PN only matters to a cold read).
		if entry, ok := c.cache.Get(lid); ok && !entry.stale {
			v.key, v.lid, v.entry = lid, lid, entry
			return v, nil
		}
		// Cold, with whatsmeow's tables beside the plugin's: the rows and
		// the phone number in one statement.
		gen := c.readGen()
		if pn, rows, ok := c.lookupByLID(ctx, v.acc, lid); ok {
			v.key, v.lid, v.pn = lid, lid, pn
			v.entry = c.cacheRows(ctx, v.acc, lid, rows, gen)
			return v, nil
		}
	}
	v.key, v.lid, v.pn = c.resolve(ctx, jid)
	v.entry, err = c.lookup(ctx, v.acc, v.key, v.lid, v.pn)
	return v, err
}

// lookup returns the merged entry for a contact. A row filed under the PN
// before the LID was known still counts.
func (c *Core) lookup(ctx context.Context, acc *accountState, key, lid, pn types.JID) (*cachedEntry, error) {
	cached, isCached := c.cache.Get(key)
	if isCached && !cached.stale {
		return cached, nil
	}
	gen := c.readGen()
	candidates := make([]types.JID, 1, 3)
	candidates[0] = key
	if !pn.IsEmpty() && pn != key {
		candidates = append(candidates, pn)
	}
	if !lid.IsEmpty() && lid != key {
		candidates = append(candidates, lid)
	}
	rows, err := acc.store.GetMany(ctx, candidates...)
	if err != nil {
		c.metrics.dbError("read_tokens")
		// The plugin's database is failing: the last entry known beats
		// none, and whatsmeow's own store (which a failed write still
		// reached, see receiveTokens) may hold a newer token. Expiry
		// is still judged by the clock when it is used.
		if entry := fallbackEntry(cached, c.whatsmeowRow(ctx, key)); entry != nil {
			c.warnOnce("read", err, "Failed to read privacy tokens; using the last known ones")
			return entry, nil
		}
		c.warnOnce("read", err, "Failed to read privacy tokens; going on without them")
		return nil, fmt.Errorf("read token for %s: %w: %w", key, ErrDatabase, err)
	}
	return c.cacheRows(ctx, acc, key, rows, gen), nil
}

// readGen is the write generation a read starts at (see cacheRows).
func (c *Core) readGen() uint64 {
	c.cacheMu.Lock()
	defer c.cacheMu.Unlock()
	return c.writeGen
}

// cacheRows merges the rows a read found for a contact (and, while the
// import runs, whatsmeow's own row) and caches the entry, unless a write
// committed since the read began at generation gen: that write may have
// changed the rows, so only what no write can have made stale is cached.
func (c *Core) cacheRows(ctx context.Context, acc *accountState, key types.JID, rows []*sqlstore.Entry, gen uint64) *cachedEntry {
	c.clearWarned("read")
	inner := c.innerRow(ctx, acc, key)
	if inner != nil {
		rows = append(rows, inner)
	}
	entry := mergeRows(rows)
	if inner != nil && entry.tokenTS == inner.TokenTS && bytes.Equal(entry.token, inner.Token) && !holdsToken(rows[:len(rows)-1], inner) {
		// whatsmeow's store holds a newer token than the plugin's rows.
		c.adoptRow(acc, inner)
	}
	c.cacheMu.Lock()
	if c.writeGen == gen {
		c.cache.Add(key, entry)
	}
	c.cacheMu.Unlock()
	return entry
}

// holdsToken reports whether one of rows holds row's token at its timestamp.
func holdsToken(rows []*sqlstore.Entry, row *sqlstore.Entry) bool {
	for _, other := range rows {
		if other.TokenTS == row.TokenTS && bytes.Equal(other.Token, row.Token) {
			return true
		}
	}
	return false
}

// fallbackEntry is what a read serves while the plugin's database fails:
// the cached entry (nil if none) merged with whatsmeow's own row (nil if
// none), or nil when there is neither. It is never cached.
func fallbackEntry(cached *cachedEntry, inner *sqlstore.Entry) *cachedEntry {
	if inner == nil {
		return cached
	}
	rows := []*sqlstore.Entry{inner}
	if cached != nil {
		rows = append(rows, &sqlstore.Entry{Token: cached.token, TokenTS: cached.tokenTS, SenderTS: cached.senderTS})
	}
	return mergeRows(rows)
}

// mergeRows merges the rows of one contact (under its LID and its PN) into
// one entry: the newest token, the newest sender timestamp. A row that holds
// the same token bytes as another but with our sender timestamp as its token
// timestamp is whatsmeow 2025-12's history-sync mistake (filed under the PN
// while the plugin wrote the LID row right): its timestamp is never
// preferred, or an expired token would look as new as our last issuance.
func mergeRows(rows []*sqlstore.Entry) *cachedEntry {
	entry := &cachedEntry{}
	for _, row := range rows {
		entry.senderTS = max(entry.senderTS, row.SenderTS)
	}
	misfiled := func(row *sqlstore.Entry) bool {
		if entry.senderTS == 0 || row.TokenTS != entry.senderTS {
			return false
		}
		for _, other := range rows {
			if other != row && other.TokenTS != row.TokenTS && bytes.Equal(other.Token, row.Token) {
				return true
			}
		}
		return false
	}
	for _, row := range rows {
		if len(row.Token) > 0 && row.TokenTS >= entry.tokenTS && !misfiled(row) {
			entry.token, entry.tokenTS = row.Token, row.TokenTS
		}
	}
	return entry
}

// cacheStale must follow every write whose effect the cache cannot apply itself
// (or that may have failed halfway): in-flight reads will not cache what
// they read, and the cached entries of the keys are marked stale. A stale
// entry is read again on its next use, and still served if that read fails,
// so a database outage never costs a contact the token last known for it.
func (c *Core) cacheStale(keys ...types.JID) {
	c.cacheMu.Lock()
	defer c.cacheMu.Unlock()
	c.writeGen++
	for _, key := range keys {
		if entry, ok := c.cache.Peek(key); ok && !entry.stale {
			stale := *entry
			stale.stale = true
			c.cache.Add(key, &stale)
		}
	}
}

// forgetCache empties the cache: the account it belonged to is gone.
func (c *Core) forgetCache() {
	c.cacheMu.Lock()
	defer c.cacheMu.Unlock()
	c.writeGen++
	c.cache.Purge()
}

// cacheWrites applies committed token writes to the cached entries in place,
// so a send right after a new token arrived needs no read. Entries are
// replaced, never mutated: readers hold them without a lock.
func (c *Core) cacheWrites(writes []sqlstore.TokenWrite) {
	c.cacheMu.Lock()
	defer c.cacheMu.Unlock()
	c.writeGen++
	for _, write := range writes {
		if entry, ok := c.cache.Peek(write.Contact); ok && write.TokenTS >= entry.tokenTS {
			updated := *entry
			updated.token, updated.tokenTS = write.Token, write.TokenTS
			c.cache.Add(write.Contact, &updated)
		}
	}
}

// cachePrune applies a committed prune to the cached entries, as the
// store's Prune applied it to the rows: expired tokens go, expired sender
// timestamps go.
func (c *Core) cachePrune(recvCutoff, sendCutoff int64) {
	c.cacheMu.Lock()
	defer c.cacheMu.Unlock()
	c.writeGen++
	for _, key := range c.cache.Keys() {
		entry, ok := c.cache.Peek(key)
		if !ok {
			continue
		}
		tokenExpired := len(entry.token) > 0 && (entry.tokenTS == 0 || entry.tokenTS < recvCutoff)
		senderExpired := entry.senderTS > 0 && entry.senderTS < sendCutoff
		if !tokenExpired && !senderExpired {
			continue
		}
		updated := *entry
		if tokenExpired {
			updated.token, updated.tokenTS = nil, 0
		}
		if senderExpired && len(updated.token) == 0 {
			updated.senderTS = 0
		}
		c.cache.Add(key, &updated)
	}
}

// cacheSenderTimestamp applies a committed sender timestamp to the cached
// entries in place; the stored one only ever moves forward, and so does this.
func (c *Core) cacheSenderTimestamp(ts int64, keys ...types.JID) {
	c.cacheMu.Lock()
	defer c.cacheMu.Unlock()
	c.writeGen++
	for _, key := range keys {
		if entry, ok := c.cache.Peek(key); ok && ts > entry.senderTS {
			updated := *entry
			updated.senderTS = ts
			c.cache.Add(key, &updated)
		}
	}
}
