package hooks

import (
	"bytes"
	"context"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/sqlstore"
)

// Native reports whether whatsmeow attaches, computes and issues tokens by
// itself (commit 33cfac51 and later; see package compat). The plugin is
// then the store and the policy behind those mechanics rather than the
// mechanics themselves.
func (c *Core) Native() bool { return c.compat.Native() }

// whatsmeow's native expiry rule, hard-coded there: a token is valid from
// the start of the bucket three 7-day buckets before the current one.
const (
	nativeBucket     = 604800
	nativeBuckets    = 4
	nativeCutoffSafe = 3600 // stay clear of a bucket edge between our answer and its check
)

// nativeCutoff is whatsmeow's own cutoff. It uses the real clock, as
// whatsmeow does, not the plugin's (which tests may move).
func nativeCutoff(now time.Time) int64 {
	return (now.Unix()/nativeBucket - (nativeBuckets - 1)) * nativeBucket
}

// reportedTimestamp is the token timestamp to hand whatsmeow for a token
// the plugin's policy calls valid. whatsmeow judges expiry itself with its
// fixed 28-day window and treats a zero timestamp as expired; the server's
// window (AB props 865/909) may be longer (26 buckets have been seen), so a
// token older than whatsmeow's cutoff is reported as fresh: the plugin's
// policy wins. Its own re-Put of this value is recognised (see nativePut).
func reportedTimestamp(tokenTS int64) time.Time {
	now := time.Now()
	if tokenTS >= nativeCutoff(now)+nativeCutoffSafe {
		return time.Unix(tokenTS, 0)
	}
	return now
}

// nativeGet answers whatsmeow's own reads (ensureTCToken on messages,
// presence, pictures, groups, usync, and its issuance and identity paths):
//   - Token and Timestamp only when the plugin would attach the token now
//     (the decision pinned by Plugin.SendMessage, else the policy: window
//     and AB prop 10518), so whatsmeow's attach agrees with the plugin;
//   - never a nil result for a 1:1 contact: a result with no token still
//     makes whatsmeow fall through to the cstoken, which the salt store
//     gates, and carries the SenderTimestamp that seeds whatsmeow's sender
//     map, so that it does not issue again after a restart in a bucket the
//     plugin already recorded.
func (c *Core) nativeGet(ctx context.Context, user types.JID) *store.PrivacyToken {
	user = user.ToNonAD()
	out := &store.PrivacyToken{User: user}
	if ineligible(user, c.own()) != "" {
		return out
	}
	v, err := c.view(ctx, user)
	if err != nil {
		return out
	}
	// Only a sender timestamp still valid under the plugin's sender window
	// is reported: whatsmeow reissues on an explicit identity change from
	// what it was told, and must not for an issuance the policy calls
	// expired.
	senderTS := c.adoptNativeIssuance(ctx, v, user)
	if senderTS > 0 && v.acc.policy.Load().Timing.IssuedTokenValid(senderTS, c.nowUnix()) {
		c.compat.SetSenderTimestamp(out, time.Unix(senderTS, 0))
	}
	var attach bool
	token := v.entry.token
	if gate := groupGateOf(ctx); gate != nil {
		// A group call through the plugin: its AB prop, not the 1:1 one.
		attach = gate.attach && v.holdsValidToken(c.nowUnix())
	} else if pin := pinFor(ctx, user); pin != nil {
		attach, token = pin.decision.Attach == AttachTCToken, pin.decision.Token
	} else {
		attach = v.acc.policy.Load().AttachTCToken && v.holdsValidToken(c.nowUnix())
	}
	if attach && len(token) > 0 {
		out.Token = token
		out.Timestamp = reportedTimestamp(v.entry.tokenTS)
		if !bytes.Equal(token, v.entry.token) {
			out.Timestamp = time.Now()
		}
	}
	return out
}

// adoptNativeIssuance persists an issuance whatsmeow made by itself.
// whatsmeow records it only in memory (and in its table only for contacts
// with a token row); it reads the store right after, so a sender timestamp
// in its map newer than the stored one is written down here. Returns the
// sender timestamp in force.
func (c *Core) adoptNativeIssuance(ctx context.Context, v contactView, user types.JID) int64 {
	stored := v.entry.senderTS
	mapped := c.compat.SenderTS(user)
	if mapped.IsZero() || mapped.Unix() <= stored || mapped.Unix() > time.Now().Unix()+maxFutureSkew {
		return stored
	}
	if err := c.recordSenderTimestamps(ctx, v.acc, mapped.Unix(), []types.JID{v.key}); err != nil {
		c.log.Warn().Err(err).Stringer("contact", v.key).Msg("Failed to record whatsmeow's own issuance")
		return stored
	}
	c.log.Debug().Stringer("contact", v.key).Int64("t", mapped.Unix()).Msg("Recorded whatsmeow's own issuance")
	return mapped.Unix()
}

// nativePut takes whatsmeow's own writes apart. Besides tokens from
// notifications and history sync, whatsmeow re-Puts a row after its own
// issuance to set SenderTimestamp, echoing what nativeGet reported (maybe a
// Timestamp that was moved forward, or none): that write records the sender
// timestamp only and never refreshes the token. Returns the tokens still to
// store as received, and the sender timestamps to record once they are
// (recordNativeSenders).
func (c *Core) nativePut(ctx context.Context, tokens []store.PrivacyToken) ([]ReceivedToken, nativeSenders) {
	incoming := make([]ReceivedToken, 0, len(tokens))
	senders := nativeSenders{record: make(map[int64][]types.JID), copy: make(map[int64][]types.JID)}
	own := c.own()
	for _, token := range tokens {
		senderTS := c.senderTimestampOf(token)
		// A JID the database cannot hold is refused with its token below.
		if senderTS > 0 && senderTS <= time.Now().Unix()+maxFutureSkew && sqlstore.CheckContact(token.User) == nil {
			key, _, _ := c.resolve(ctx, token.User)
			if ineligible(key, own) != "" {
				// Our own account (a history mapping can pair a contact's
				// number with our LID), a group, a bot: no sender
				// timestamp is kept for it, as for its token.
				continue
			}
			// An echo (no token, or the token already stored: whatsmeow's
			// re-Put of what it read) stores no token. The view read to
			// tell also holds the stored sender timestamp, so telling one
			// already held adds no read; a write without a token, which
			// needs no view, is recorded as before.
			echo, stored := true, int64(0)
			if len(token.Token) > 0 {
				v, err := c.view(ctx, token.User)
				echo = err == nil && bytes.Equal(v.entry.token, token.Token)
				if err == nil {
					stored = v.entry.senderTS
				}
			}
			senders.add(key, senderTS, stored)
			if echo || token.Timestamp.IsZero() {
				continue
			}
		}
		if len(token.Token) == 0 && token.Timestamp.IsZero() {
			continue
		}
		received := ReceivedToken{JID: token.User, Token: token.Token}
		if !token.Timestamp.IsZero() {
			received.Timestamp = token.Timestamp.Unix()
		}
		incoming = append(incoming, received)
	}
	return incoming, senders
}

// nativeSenders are the sender timestamps one of whatsmeow's writes
// carries, by timestamp: those newer than the plugin holds (record), and
// those it already holds (copy). whatsmeow's write-back after its own
// issuance carries the timestamp nativeGet recorded moments before, and
// recording it again in the plugin's table changes nothing; but
// whatsmeow's own table may still lack it (the row was created after that
// copy, or the copy failed), and whatsmeow alone would have written it
// there, so it is still copied.
type nativeSenders struct {
	record, copy map[int64][]types.JID
}

func (s nativeSenders) add(key types.JID, ts, stored int64) {
	if ts > stored {
		s.record[ts] = append(s.record[ts], key)
	} else {
		s.copy[ts] = append(s.copy[ts], key)
	}
}

// recordNativeSenders records what nativePut found, after the write's
// tokens are stored: a copy into whatsmeow's table then finds the row a
// token just created there.
func (c *Core) recordNativeSenders(ctx context.Context, acc *accountState, senders nativeSenders) {
	for ts, keys := range senders.record {
		if err := c.recordSenderTimestamps(ctx, acc, ts, keys); err != nil {
			c.log.Warn().Err(err).Stringer("first", keys[0]).Int("contacts", len(keys)).
				Msg("Failed to record sender timestamps whatsmeow wrote")
		}
	}
	for ts, keys := range senders.copy {
		c.writeSenderThrough(ctx, ts, keys)
	}
}

// senderTimestampOf reads PrivacyToken.SenderTimestamp, a field whatsmeow
// 2025-12 lacks; 0 when absent, unset or not after the epoch (whatsmeow's
// history sync files a missing one as the epoch).
func (c *Core) senderTimestampOf(token store.PrivacyToken) int64 {
	ts := c.compat.SenderTimestamp(token)
	if ts.IsZero() || ts.Unix() <= 0 {
		return 0
	}
	return ts.Unix()
}

// nativeReissues reports whether whatsmeow has just reissued our token for
// an explicit identity change by itself: it does so, before dispatching the
// event, whenever its sender map holds the contact (seeded from the sender
// timestamp nativeGet reported). The plugin then stays out, so the contact
// gets one reissue. Implicit changes whatsmeow does not reissue for.
func (c *Core) nativeReissues(contact types.JID) bool {
	if !c.compat.Native() {
		return false
	}
	key, _, _ := c.resolve(context.Background(), contact)
	return !c.compat.SenderTS(key).IsZero()
}
