package hooks

import (
	"context"

	"go.mau.fi/whatsmeow/types"
)

// JID resolution: which key a contact's row lives under.

// resolve maps a contact to its LID (when known) and PN (when known), and the
// key its row lives under: the LID when known, else the PN.
func (c *Core) resolve(ctx context.Context, jid types.JID) (key, lid, pn types.JID) {
	jid = jid.ToNonAD()
	switch jid.Server {
	case types.HiddenUserServer:
		lid = jid
		if c.cli.Store.LIDs != nil {
			pn, _ = c.cli.Store.LIDs.GetPNForLID(ctx, jid)
		}
	case types.DefaultUserServer:
		pn = jid
		if c.cli.Store.LIDs != nil {
			var err error
			lid, err = c.cli.Store.LIDs.GetLIDForPN(ctx, jid)
			if err != nil {
				c.warnOnce("lid-lookup", err, "Failed to look up a contact's LID; using the phone number")
			}
		}
	default:
		return jid, types.EmptyJID, types.EmptyJID
	}
	lid, pn = lid.ToNonAD(), pn.ToNonAD()
	// A mapping that pairs a contact with our own account (a hostile
	// history blob can store one) is ignored, both ways: a contact never
	// resolves to us, nor we to a contact.
	if own := c.own(); own.mapsToOwn(jid, lid) {
		lid = types.EmptyJID
	} else if own.mapsToOwn(jid, pn) {
		pn = types.EmptyJID
	}
	if !lid.IsEmpty() {
		return lid, lid, pn
	}
	return pn, lid, pn
}

// resolveKeys returns, for each JID, the key its row is stored under: a LID
// is its own key, and a PN maps to its LID when whatsmeow knows it, else
// stays. It asks whatsmeow's LID map once for all the PNs: in the shared
// database when whatsmeow's tables are there, else through whatsmeow's
// batch call, which caches no negative answers (ingesting a million tokens
// must not fill whatsmeow's never-evicting cache with "no LID" entries, as
// one GetLIDForPN per token did; its positive answers it does keep).
func (c *Core) resolveKeys(ctx context.Context, jids []types.JID) []types.JID {
	keys, _ := c.resolveKeysHeld(ctx, jids, false)
	return keys
}

// resolveKeysHeld is resolveKeys, and with withHeld, in the same statement,
// which of the phone numbers among jids the plugin's table held a row
// under as it was read. held is nil when there is no phone number among
// jids, or when it is not known (whatsmeow's LID map is not in the
// plugin's database, or the lookup failed).
func (c *Core) resolveKeysHeld(ctx context.Context, jids []types.JID, withHeld bool) (keys []types.JID, held map[types.JID]bool) {
	keys = make([]types.JID, len(jids))
	var pns []types.JID
	for i, jid := range jids {
		keys[i] = jid.ToNonAD()
		if keys[i].Server == types.DefaultUserServer {
			pns = append(pns, keys[i])
		}
	}
	if len(pns) == 0 || c.cli.Store.LIDs == nil {
		return keys, nil
	}
	var lids map[types.JID]types.JID
	var err error
	if acc := c.account.Load(); acc != nil && c.joinsWhatsmeow(acc) {
		// whatsmeow's LID map is in the plugin's database: read it there,
		// which leaves whatsmeow's never-evicting cache alone.
		if withHeld {
			held = make(map[types.JID]bool, len(pns))
		}
		lids, err = acc.store.LIDsForPNs(ctx, pns, held)
	} else {
		lids, err = c.cli.Store.LIDs.GetManyLIDsForPNs(ctx, pns)
	}
	if err != nil {
		c.warnOnce("lid-lookup", err, "Failed to look up contacts' LIDs; storing under the phone numbers")
		return keys, nil
	}
	own := c.own()
	for i, key := range keys {
		// As in resolve: a contact's number never maps to our own LID.
		if lid := lids[key].ToNonAD(); key.Server == types.DefaultUserServer && !lid.IsEmpty() && !own.mapsToOwn(key, lid) {
			keys[i] = lid
		}
	}
	return keys, held
}
