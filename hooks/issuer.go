package hooks

import (
	"context"
	"errors"
	"fmt"

	"go.mau.fi/whatsmeow/types"
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
	issueToLID := acc.policy.Load().IssueToLID
	for _, jid := range jids {
		key, lid, pn := c.resolve(ctx, jid)
		target := issueTarget(issueToLID, key, lid, pn)
		if seen[key] {
			continue
		}
		seen[key] = true
		keyOf[target] = key
		targets = append(targets, IssueTarget{JID: target, T: now})
	}
	return c.issue(ctx, acc, targets, keyOf)
}

// issueTarget picks the JID we address the issuance to: the LID when known,
// unless AB prop 14303 says the PN; else the key the row lives under.
func issueTarget(issueToLID bool, key, lid, pn types.JID) types.JID {
	switch {
	case !issueToLID && !pn.IsEmpty():
		return pn
	case !lid.IsEmpty():
		return lid
	}
	return key
}

// issue sends the IQs, chunk by chunk. A chunk that fails stops the run; the
// chunks before it stay recorded.
func (c *Core) issue(ctx context.Context, acc *accountState, targets []IssueTarget, keyOf map[types.JID]types.JID) ([]ReceivedToken, error) {
	var received []ReceivedToken
	for _, chunk := range ChunkTargets(targets) {
		reply, err := sendIQ(ctx, c.cli, "privacy", "set", BuildIssueTokens(chunk))
		var got []ReceivedToken
		var refused []types.JID
		var problems []error
		if err == nil {
			got, refused, problems, err = ParseIssueReply(reply)
		}
		if err != nil {
			return received, fmt.Errorf("issue tokens to %d contacts (first %s): %w", len(chunk), chunk[0].JID, err)
		}
		for _, problem := range problems {
			c.log.Warn().Err(problem).Msg("Skipped a token in the privacy IQ reply")
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
				// Rolled back: the cache keeps the last known entries.
				return received, fmt.Errorf("record sender timestamp for %d contacts (first %s): %w", len(contacts), contacts[0], err)
			}
			c.wroteSenderTimestamp(ts, contacts...)
		}
		if len(got) > 0 {
			if err = c.storeTokens(ctx, acc, "issuance reply", got); err != nil {
				return received, err
			}
			received = append(received, got...)
		}
		c.log.Debug().Int("contacts", len(keys)).Int("tokens_received", len(got)).Msg("Issued our privacy token")
	}
	return received, nil
}

// MaybeIssueAfterSend issues our token to a contact we just messaged, if the
// sender-side bucket rolled over since we last did. It never blocks the
// caller: the check uses the cache (one read when cold) and the IQ runs in
// the background.
func (c *Core) MaybeIssueAfterSend(ctx context.Context, to types.JID) {
	if Ineligible(to, c.own()) != "" {
		return
	}
	v, err := c.view(ctx, to)
	if err != nil || !v.acc.policy.Load().Timing.IssuanceDue(v.entry.senderTS, c.nowUnix()) {
		return
	}
	c.goBackground(func(bgCtx context.Context) {
		c.issueOne(bgCtx, to, "send", func(timing Timing, senderTS, now int64) (int64, bool) {
			return now, timing.IssuanceDue(senderTS, now)
		})
	})
}

// Reissue sends our token again to a contact whose identity changed (a
// reinstall), with the original sender timestamp so the bucket window is
// kept. Nothing is sent if we never issued, or if that issuance expired on
// the sender side.
func (c *Core) Reissue(ctx context.Context, contact types.JID) {
	if Ineligible(contact, c.own()) != "" {
		return
	}
	c.issueOne(ctx, contact, "identity change", func(timing Timing, senderTS, now int64) (int64, bool) {
		return senderTS, timing.IssuedTokenValid(senderTS, now)
	})
}

// issueOne issues to one contact, at most one IQ in flight per contact
// whatever triggered it: concurrent callers share the IQ, and a caller
// arriving after it finished decides again on the fresh sender timestamp.
// pick says whether to issue and with which t.
func (c *Core) issueOne(ctx context.Context, contact types.JID, trigger string, pick func(timing Timing, senderTS, now int64) (t int64, ok bool)) {
	key, _, _ := c.resolve(ctx, contact)
	_, _, _ = c.issuing.Do(key.String(), func() (any, error) {
		v, err := c.view(ctx, contact)
		if err != nil {
			return nil, err
		}
		t, ok := pick(v.acc.policy.Load().Timing, v.entry.senderTS, c.nowUnix())
		if !ok {
			c.log.Debug().Stringer("contact", key).Str("trigger", trigger).Int64("sender_ts", v.entry.senderTS).
				Msg("No issuance due")
			return nil, nil
		}
		target := issueTarget(v.acc.policy.Load().IssueToLID, v.key, v.lid, v.pn)
		_, err = c.issue(ctx, v.acc, []IssueTarget{{JID: target, T: t}}, map[types.JID]types.JID{target: v.key})
		if err != nil {
			c.log.Warn().Err(err).Stringer("contact", key).Str("trigger", trigger).Msg("Failed to issue our privacy token")
		} else {
			c.log.Debug().Stringer("contact", key).Str("trigger", trigger).Int64("t", t).Msg("Issued our privacy token")
		}
		return nil, err
	})
}
