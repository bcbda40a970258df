package hooks

import (
	"context"
	"errors"
	"fmt"

	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/sqlstore"
)

// ErrIneligible means a JID can never be issued a token.
var ErrIneligible = errors.New("cannot issue a trusted-contact token")

// IssueTokens issues our token to each contact at timestamp now, in as few
// privacy IQs as the batch limit allows, stores whatever tokens the reply
// carries and records the sender timestamp for every contact accepted.
func (c *Core) IssueTokens(ctx context.Context, jids []types.JID) ([]ReceivedToken, error) {
	if len(jids) == 0 {
		return nil, nil
	}
	own := c.own()
	for _, jid := range jids {
		if why := Ineligible(jid, own); why != "" {
			return nil, fmt.Errorf("%w to %s: %s", ErrIneligible, jid, why)
		}
	}
	acc, err := c.acct(ctx)
	if err != nil {
		return nil, err
	}
	now := c.nowUnix()
	targets := make([]IssueTarget, 0, len(jids))
	keyOf := make(map[types.JID]types.JID, len(jids))
	seen := make(map[types.JID]bool, len(jids))
	for _, jid := range jids {
		target, key := c.issueTarget(ctx, acc, jid)
		if seen[key] {
			continue
		}
		seen[key] = true
		keyOf[target] = key
		targets = append(targets, IssueTarget{JID: target, T: now})
	}
	return c.issue(ctx, acc, targets, keyOf)
}

// issueTarget picks the JID we address the issuance to (the LID when known
// and AB prop 14303 allows it) and the key our row lives under.
func (c *Core) issueTarget(ctx context.Context, acc *accountState, jid types.JID) (target, key types.JID) {
	key, lid, pn := c.resolve(ctx, jid)
	target = key
	if !acc.policy.Load().IssueToLID && !pn.IsEmpty() {
		target = pn
	} else if !lid.IsEmpty() {
		target = lid
	}
	return target, key
}

// issue sends the IQs, chunk by chunk. A chunk that fails stops the run; the
// chunks before it stay recorded.
func (c *Core) issue(ctx context.Context, acc *accountState, targets []IssueTarget, keyOf map[types.JID]types.JID) ([]ReceivedToken, error) {
	var received []ReceivedToken
	for _, chunk := range ChunkTargets(targets) {
		reply, err := sendIQ(ctx, c.cli, "privacy", "set", BuildIssueTokens(chunk))
		if err != nil {
			return received, fmt.Errorf("issue tokens to %d contacts (first %s): %w", len(chunk), chunk[0].JID, err)
		}
		got, refused, err := ParseIssueReply(reply)
		if err != nil {
			return received, fmt.Errorf("issue tokens to %d contacts (first %s): %w", len(chunk), chunk[0].JID, err)
		}
		refusedSet := make(map[types.JID]bool, len(refused))
		for _, jid := range refused {
			refusedSet[jid] = true
			c.log.Warn().Stringer("contact", jid).Msg("Server refused our token issuance for a contact")
		}
		// Group by timestamp: a reissue keeps each contact's original one.
		byTS := make(map[int64][]types.JID)
		var keys []types.JID
		for _, target := range chunk {
			if refusedSet[target.JID] {
				continue
			}
			key := keyOf[target.JID]
			byTS[target.T] = append(byTS[target.T], key)
			keys = append(keys, key)
		}
		for ts, contacts := range byTS {
			err = acc.store.SetSenderTimestamps(ctx, ts, contacts...)
			if err != nil {
				c.wrote(keys...)
				return received, fmt.Errorf("record sender timestamp for %d contacts (first %s): %w", len(contacts), contacts[0], err)
			}
		}
		c.wrote(keys...)
		if len(got) > 0 {
			if err = c.storeReceived(ctx, acc, got); err != nil {
				return received, err
			}
			received = append(received, got...)
		}
		c.log.Debug().Int("contacts", len(keys)).Int("tokens_received", len(got)).Msg("Issued our privacy token")
	}
	return received, nil
}

// storeReceived stores tokens that came back in an issuance reply.
func (c *Core) storeReceived(ctx context.Context, acc *accountState, tokens []ReceivedToken) error {
	writes := make([]sqlstore.TokenWrite, 0, len(tokens))
	keys := make([]types.JID, 0, len(tokens))
	for _, token := range tokens {
		if err := c.checkToken(token.JID, token.Token, token.Timestamp); err != nil {
			c.log.Warn().Err(err).Msg("Rejected a privacy token in an issuance reply")
			continue
		}
		key, _, _ := c.resolve(ctx, token.JID)
		writes = append(writes, sqlstore.TokenWrite{Contact: key, Token: token.Token, TokenTS: token.Timestamp})
		keys = append(keys, key)
	}
	if len(writes) == 0 {
		return nil
	}
	_, err := acc.store.PutTokens(ctx, writes...)
	c.wrote(keys...)
	if err != nil {
		return fmt.Errorf("store %d tokens from issuance reply: %w", len(writes), err)
	}
	return nil
}

// MaybeIssueAfterSend issues our token to a contact we just messaged, if the
// sender-side bucket rolled over since we last did. It never blocks the
// caller: the check uses the cache (one read when cold) and the IQ runs in
// the background, one at a time per contact.
func (c *Core) MaybeIssueAfterSend(ctx context.Context, to types.JID) {
	if Ineligible(to, c.own()) != "" {
		return
	}
	acc, err := c.acct(ctx)
	if err != nil {
		return
	}
	key, lid, pn := c.resolve(ctx, to)
	entry, err := c.lookup(ctx, acc, key, lid, pn)
	if err != nil {
		c.warnOnce("read", err, "Failed to read sender timestamp; skipping issuance")
		return
	}
	if !acc.policy.Load().Timing.IssuanceDue(entry.senderTS, c.nowUnix()) {
		return
	}
	c.goBackground(func(bgCtx context.Context) {
		c.issueOnce(bgCtx, acc, to, "send")
	})
}

// issueOnce issues to one contact, deduplicated: concurrent callers for the
// same contact share one IQ, and a caller arriving after it finished sees
// the fresh sender timestamp and does nothing.
func (c *Core) issueOnce(ctx context.Context, acc *accountState, to types.JID, why string) {
	key, lid, pn := c.resolve(ctx, to)
	_, _, _ = c.issuing.Do("send:"+key.String(), func() (any, error) {
		entry, err := c.lookup(ctx, acc, key, lid, pn)
		if err != nil {
			c.warnOnce("read", err, "Failed to read sender timestamp; skipping issuance")
			return nil, err
		}
		now := c.nowUnix()
		if !acc.policy.Load().Timing.IssuanceDue(entry.senderTS, now) {
			return nil, nil
		}
		target, _ := c.issueTarget(ctx, acc, to)
		_, err = c.issue(ctx, acc, []IssueTarget{{JID: target, T: now}}, map[types.JID]types.JID{target: key})
		if err != nil {
			c.log.Warn().Err(err).Stringer("contact", key).Str("trigger", why).Msg("Failed to issue our privacy token")
		} else {
			c.log.Debug().Stringer("contact", key).Str("trigger", why).Msg("Issued our privacy token after a send")
		}
		return nil, err
	})
}

// Reissue sends our token again to a contact whose identity changed (a
// reinstall), with the original sender timestamp so the bucket window is
// kept. Nothing is sent if we never issued, or if that issuance expired on
// the sender side.
func (c *Core) Reissue(ctx context.Context, contact types.JID) {
	contact = contact.ToNonAD()
	if contact.IsBot() || contact == types.StatusBroadcastJID || Ineligible(contact, c.own()) != "" {
		return
	}
	acc, err := c.acct(ctx)
	if err != nil {
		return
	}
	key, lid, pn := c.resolve(ctx, contact)
	_, _, _ = c.issuing.Do("reissue:"+key.String(), func() (any, error) {
		entry, err := c.lookup(ctx, acc, key, lid, pn)
		if err != nil {
			c.warnOnce("read", err, "Failed to read sender timestamp; skipping reissue")
			return nil, err
		}
		if entry.senderTS == 0 || !acc.policy.Load().Timing.IssuedTokenValid(entry.senderTS, c.nowUnix()) {
			c.log.Debug().Stringer("contact", key).Msg("Identity changed, but no valid issuance to repeat")
			return nil, nil
		}
		target, _ := c.issueTarget(ctx, acc, contact)
		_, err = c.issue(ctx, acc, []IssueTarget{{JID: target, T: entry.senderTS}}, map[types.JID]types.JID{target: key})
		if err != nil {
			c.log.Warn().Err(err).Stringer("contact", key).Msg("Failed to reissue our privacy token after an identity change")
		} else {
			c.log.Info().Stringer("contact", key).Int64("sender_ts", entry.senderTS).Msg("Reissued our privacy token after an identity change")
		}
		return nil, err
	})
}
