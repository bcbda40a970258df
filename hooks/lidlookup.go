package hooks

import (
	"context"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/types"
)

// First contact by phone number: a cstoken is an HMAC over the contact's
// LID, and a bridge's user typically types a phone number whose LID
// whatsmeow has never seen. Plugin.SendMessage then asks the server for it
// (one usync round trip, on a cold contact only) before deciding.

const (
	// unknownLIDTTL is how long a number the server gave no LID for is not
	// asked about again, so that sends to it do not each cost a round trip.
	unknownLIDTTL = time.Hour
	// unknownLIDCacheSize bounds the negative cache.
	unknownLIDCacheSize = 1024
	// lidLookupTimeout bounds the extra round trip: the send goes on
	// without a cstoken rather than wait longer.
	lidLookupTimeout = 10 * time.Second
)

func newUnknownLIDCache() *ttlSet {
	return newTTLSet(unknownLIDCacheSize, unknownLIDTTL)
}

// lookupLID asks the server for a phone number's LID through whatsmeow's
// public usync call (GetUserInfo), which also stores the mapping. Concurrent
// sends to the same number share one lookup; a number the server gave no
// LID for is remembered for a while. It returns the empty JID when the LID
// stays unknown.
func (c *Core) lookupLID(ctx context.Context, pn types.JID) types.JID {
	pn = pn.ToNonAD()
	if _, unknown := c.unknownLIDs.Get(pn); unknown {
		return types.EmptyJID
	}
	result, _, _ := c.lidLookups.Do(pn.String(), func() (any, error) {
		// Another send may have finished the lookup just before this one
		// joined: the store then knows.
		if lid, err := c.cli.Store.LIDs.GetLIDForPN(ctx, pn); err == nil && !lid.IsEmpty() {
			return lid.ToNonAD(), nil
		}
		lookupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lidLookupTimeout)
		defer cancel()
		info, err := c.cli.GetUserInfo(lookupCtx, []types.JID{pn})
		if err != nil {
			c.warnOnce("lid-usync", fmt.Errorf("look up the LID of %s: %w", pn, err),
				"Failed to ask the server for a contact's LID; sending without a cstoken")
			return types.EmptyJID, nil
		}
		c.clearWarned("lid-usync")
		lid := info[pn].LID.ToNonAD()
		if lid.IsEmpty() {
			c.unknownLIDs.Add(pn, struct{}{})
			c.log.Debug().Stringer("contact", pn).Msg("The server knows no LID for this number; not asking again for a while")
			return types.EmptyJID, nil
		}
		c.log.Debug().Stringer("contact", pn).Stringer("lid", lid).Msg("Looked up a contact's LID for its first cstoken")
		return lid, nil
	})
	lid, _ := result.(types.JID)
	return lid
}
