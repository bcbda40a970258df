package hooks

import (
	"context"

	"go.mau.fi/whatsmeow/types"
)

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
	if Ineligible(jid, Own{}) != "" {
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
