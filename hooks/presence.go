package hooks

import (
	"context"
	"sync"

	"go.mau.fi/whatsmeow/types"
)

// maxPresencePending bounds the presence updates waiting to be recorded. A
// contact dropped from a full queue is recorded by its next update.
const maxPresencePending = 1024

// presenceQueue holds the senders of presence updates until one worker
// records them: a burst of updates costs one goroutine, not one each.
type presenceQueue struct {
	mu      sync.Mutex
	pending []types.JID
	running bool
}

// push queues a sender. It reports whether a worker must be started, and
// false as well when the queue is full.
func (q *presenceQueue) push(jid types.JID) (start bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) >= maxPresencePending {
		return false
	}
	q.pending = append(q.pending, jid)
	start = !q.running
	q.running = true
	return start
}

// takeOrStop takes every queued sender; when there is none, the worker
// counts as stopped, under the lock push takes.
func (q *presenceQueue) takeOrStop() []types.JID {
	q.mu.Lock()
	defer q.mu.Unlock()
	batch := q.pending
	q.pending = nil
	if len(batch) == 0 {
		q.running = false
	}
	return batch
}

// notePresence records, in the background, that a contact's presence
// reaches us: presence updates only reach subscribers.
func (c *Core) notePresence(from types.JID) {
	if !c.presence.push(from) {
		return
	}
	c.goBackground(func(context.Context) {
		for batch := c.presence.takeOrStop(); len(batch) > 0; batch = c.presence.takeOrStop() {
			for _, jid := range batch {
				c.markSubscribed(jid)
			}
		}
	})
}

// SubscribePresence subscribes to a contact's presence through whatsmeow
// (which attaches the tctoken via the interposer) and remembers the
// subscription, so that a new token from that contact re-sends it.
func (c *Core) SubscribePresence(ctx context.Context, jid types.JID) error {
	err := c.cli.SubscribePresence(ctx, jid)
	if err == nil {
		c.markSubscribed(jid)
	}
	return err
}

// markSubscribed records a subscription under the contact's storage key,
// keeping the JID it was made with so the re-send uses the same address.
// Presence updates only reach subscribers, so one from a contact counts too.
func (c *Core) markSubscribed(jid types.JID) {
	jid = jid.ToNonAD()
	if ineligible(jid, ownJIDs{}) != "" {
		return
	}
	key, _, _ := c.resolve(context.Background(), jid)
	if _, ok := c.subscribed.Get(key); !ok {
		c.subscribed.Add(key, jid)
	}
}

// resubscribePresence re-sends the subscription after a new token arrived,
// so that the server sees the subscription with the token attached.
func (c *Core) resubscribePresence(key types.JID) {
	jid, ok := c.subscribed.Get(key)
	if !ok {
		return
	}
	c.goBackground(func(ctx context.Context) {
		if err := c.cli.SubscribePresence(ctx, jid); err != nil {
			c.log.Warn().Err(err).Stringer("contact", jid).Msg("Failed to re-send presence subscription with the new token")
		} else {
			c.log.Debug().Stringer("contact", jid).Msg("Re-sent presence subscription with the new token")
		}
	})
}
