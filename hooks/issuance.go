package hooks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/store"
	wsqlstore "go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"golang.org/x/sync/singleflight"
)

// issuedTokens is the state of our own issuance: the queue, the backoff
// and the in-flight set (issuer), and the calls issuing right now.
type issuedTokens struct {
	issuing singleflight.Group
	issuer  issuance
}

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
		if why := ineligible(jid, own); why != "" {
			return nil, fmt.Errorf("%w to %s: %s", ErrIneligible, jid, why)
		}
	}
	acc, err := c.acct(ctx)
	if err != nil {
		return nil, err
	}
	now := c.nowUnix()
	targets := make([]issueRecipient, 0, len(jids))
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
		targets = append(targets, issueRecipient{JID: target, T: now})
	}
	out, err := c.issue(ctx, acc, targets, keyOf)
	return out.received, err
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

// ErrNotRecorded marks an issuance the server accepted but the database
// could not record, so that callers can tell it from a refused one.
var ErrNotRecorded = errors.New("issued, but not recorded")

// issueOutcome says what happened to each contact of an issuance, by key.
type issueOutcome struct {
	received []ReceivedToken
	recorded []types.JID // accepted, sender timestamp stored
	refused  []types.JID // refused by the server, one by one or as a whole IQ
	// unrecorded were accepted by the server, but storing the sender
	// timestamp failed.
	unrecorded []types.JID
}

// issue sends the IQs, chunk by chunk. A chunk that fails stops the run; the
// chunks before it stay recorded.
func (c *Core) issue(ctx context.Context, acc *accountState, targets []issueRecipient, keyOf map[types.JID]types.JID) (issueOutcome, error) {
	var out issueOutcome
	for n, chunk := range chunkTargets(targets) {
		reply, err := sendIQ(ctx, c.cli, "privacy", "set", buildIssueTokens(chunk))
		var got []ReceivedToken
		var refused []types.JID
		var problems []error
		if err == nil {
			got, refused, problems, err = parseIssueReply(reply)
		}
		if err != nil {
			// This chunk and all after it are not issued.
			for _, rest := range chunkTargets(targets)[n:] {
				for _, target := range rest {
					out.refused = append(out.refused, keyOf[target.JID])
				}
			}
			return out, fmt.Errorf("issue tokens to %d contacts (first %s): %w", len(chunk), chunk[0].JID, err)
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
				out.refused = append(out.refused, keyOf[target.JID])
				continue
			}
			key := keyOf[target.JID]
			byTS[target.T] = append(byTS[target.T], key)
			keys = append(keys, key)
		}
		// Only the groups that committed touch the cache: a failed write
		// leaves the cached entries as they were, so that an outage does
		// not also cost the tokens the cache still holds.
		recorded := make(map[types.JID]bool, len(keys))
		for ts, contacts := range byTS {
			err = c.recordSenderTimestamps(ctx, acc, ts, contacts)
			if err != nil {
				c.metrics.dbError("put_sender_timestamps")
				// That group rolled back, and the cache keeps the last known
				// entries; groups before it committed and count as recorded.
				for _, key := range keys {
					if !recorded[key] {
						out.unrecorded = append(out.unrecorded, key)
					}
				}
				return out, fmt.Errorf("%w: sender timestamp for %d contacts (first %s): %w", ErrNotRecorded, len(contacts), contacts[0], writeErr(err))
			}
			out.recorded = append(out.recorded, contacts...)
			for _, key := range contacts {
				recorded[key] = true
			}
		}
		if len(got) > 0 {
			if err = c.receiveTokens(ctx, acc, "issuance reply", got); err != nil {
				return out, fmt.Errorf("%w: %w", ErrNotRecorded, writeErr(err))
			}
			out.received = append(out.received, got...)
		}
		c.log.Debug().Int("contacts", len(keys)).Int("tokens_received", len(got)).Msg("Issued our privacy token")
	}
	return out, nil
}

// maybeIssueAfterSend issues our token to a contact we just messaged, if the
// sender-side bucket rolled over since we last did. The contact is known to
// be eligible, and is read by `by`: to itself, or its LID when the send knew
// it. It never blocks the caller: the check uses the cache (one read when
// cold) and the issuance is queued, batched with others and sent by the
// queue's worker.
func (c *Core) maybeIssueAfterSend(ctx context.Context, to, by types.JID) {
	v, err := c.view(ctx, by)
	if err != nil {
		return
	}
	now := c.nowUnix()
	timing := v.acc.policy.Load().Timing
	if !timing.IssuanceDue(v.entry.senderTS, now) || !c.issuer.backoff.allow(v.key, Bucket(now, timing.SenderDuration), now) {
		return
	}
	c.enqueueIssue(to)
}

// reissue sends our token again to a contact whose identity changed (a
// reinstall), with the original sender timestamp so the bucket window is
// kept. Nothing is sent if we never issued, or if that issuance expired on
// the sender side.
func (c *Core) reissue(ctx context.Context, contact types.JID) {
	if ineligible(contact, c.own()) != "" {
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
func (c *Core) issueOne(ctx context.Context, contact types.JID, trigger string, pick func(timing Timing, senderTS, now int64) (t int64, ok bool)) error {
	key, _, _ := c.resolve(ctx, contact)
	_, err, _ := c.issuing.Do(key.String(), func() (any, error) {
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
		if _, busy := c.issuer.inflight.LoadOrStore(v.key, struct{}{}); busy {
			// The queue is issuing to this contact now, with t = now.
			c.log.Debug().Stringer("contact", key).Str("trigger", trigger).Msg("Issuance already in flight")
			return nil, nil
		}
		defer c.issuer.inflight.Delete(v.key)
		target := issueTarget(v.acc.policy.Load().IssueToLID, v.key, v.lid, v.pn)
		now := c.nowUnix()
		out, err := c.issue(ctx, v.acc, []issueRecipient{{JID: target, T: t}}, map[types.JID]types.JID{target: v.key})
		c.noteIssuance(out, err, Bucket(now, v.acc.policy.Load().Timing.SenderDuration), now, trigger)
		if err == nil {
			c.log.Debug().Stringer("contact", key).Str("trigger", trigger).Int64("t", t).Msg("Issued our privacy token")
		}
		return nil, err
	})
	return err
}

// recordSenderTimestamps records that we issued our token to keys at ts:
// in the plugin's table, then in the cache and in whatsmeow's own table,
// which only a committed write reaches. Only the plugin's table can fail
// it; the copy into whatsmeow's logs its own failure.
func (c *Core) recordSenderTimestamps(ctx context.Context, acc *accountState, ts int64, keys []types.JID) error {
	if err := acc.store.SetSenderTimestamps(ctx, ts, keys...); err != nil {
		return err
	}
	c.cacheSenderTimestamp(ts, keys...)
	c.writeSenderThrough(ctx, ts, keys)
	return nil
}

// writeSenderThrough copies a sender timestamp the plugin recorded into
// whatsmeow's own table, where that has a column for it (the newer
// whatsmeow) and a row for the contact, so that whatsmeow alone, after the
// plugin is removed, does not issue again within the bucket. whatsmeow
// keeps it only on a token row (its token column is NOT NULL), and so does
// this: a contact without a token has no row to carry it there, with or
// without the plugin. A timestamp only moves forward. When whatsmeow's own
// SQL store shares the plugin's database, the whole batch is one statement
// there; else it is a read and a write per contact through whatsmeow's
// store. Failures are logged once: the plugin's own table holds the
// timestamp either way.
func (c *Core) writeSenderThrough(ctx context.Context, ts int64, keys []types.JID) {
	inner := c.innerStore()
	if inner == nil || ts <= 0 || len(keys) == 0 || !c.compat.HasSenderTimestamp() {
		return
	}
	var err error
	if acc := c.account.Load(); acc != nil && c.sendersJoin(ctx, acc, inner) {
		var set int64
		if set, err = acc.store.SetWhatsmeowSenderTimestamps(ctx, ts, keys...); err == nil {
			c.log.Debug().Int("contacts", len(keys)).Int64("rows", set).Int64("t", ts).
				Msg("Copied the sender timestamp into whatsmeow's table in one statement")
		}
	} else {
		for _, key := range keys {
			if err = c.copySenderThrough(ctx, inner, key, ts); err != nil {
				break
			}
		}
	}
	if err != nil {
		c.warnOnce(senderThroughWarning, err, "Failed to copy a sender timestamp into whatsmeow's table; the plugin's table holds it")
		return
	}
	c.clearWarned(senderThroughWarning)
}

// copySenderThrough copies ts through whatsmeow's store into its row for
// key, when the row holds a token and an older sender timestamp.
func (c *Core) copySenderThrough(ctx context.Context, inner store.PrivacyTokenStore, key types.JID, ts int64) error {
	row, err := inner.GetPrivacyToken(ctx, key)
	if err != nil {
		return fmt.Errorf("read whatsmeow's row for %s to copy its sender timestamp: %w", key, err)
	} else if row == nil || len(row.Token) == 0 {
		return nil
	}
	if current := c.compat.SenderTimestamp(*row); !current.IsZero() && current.Unix() >= ts {
		return nil
	}
	c.compat.SetSenderTimestamp(row, time.Unix(ts, 0))
	if err = inner.PutPrivacyTokens(ctx, *row); err != nil {
		return fmt.Errorf("copy the sender timestamp of %s into whatsmeow's store: %w", key, err)
	}
	return nil
}

// senderThroughWarning is writeSenderThrough's warnOnce kind: set while its
// last copy into whatsmeow's table failed.
const senderThroughWarning = "sender-write-through"

// sendersJoin reports whether writeSenderThrough may write whatsmeow's
// table itself: whatsmeow's own SQL store (whose table the statement
// knows) runs on the plugin's database, by the answer the token
// write-through goes by (see joins).
func (c *Core) sendersJoin(ctx context.Context, acc *accountState, inner store.PrivacyTokenStore) bool {
	if _, own := inner.(*wsqlstore.SQLStore); !own {
		return false
	}
	return c.joins(ctx, acc)
}
