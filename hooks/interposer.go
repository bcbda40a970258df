package hooks

import (
	"context"
	"errors"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// TokenStore replaces Client.Store.PrivacyTokens, so that every read and
// write whatsmeow makes (messages, presence, profile pictures, group create,
// privacy_token notifications, history sync) goes through the plugin.
type TokenStore struct{ core *Core }

var _ store.PrivacyTokenStore = (*TokenStore)(nil)

// GetPrivacyToken returns the token to attach for user, or nil. Only tokens
// valid now are returned. When Plugin.SendMessage pinned a decision for this
// recipient, that decision wins, so that a cstoken send never also carries a
// tctoken. Errors are logged and turned into "no token": a read failure must
// never fail a send.
func (s *TokenStore) GetPrivacyToken(ctx context.Context, user types.JID) (*store.PrivacyToken, error) {
	c := s.core
	if c.closed.Load() {
		return c.innerStore().GetPrivacyToken(ctx, user)
	}
	if c.compat.Native() {
		return c.nativeGet(ctx, user), nil
	}
	user = user.ToNonAD()
	if gate := groupGateOf(ctx); gate != nil && !gate.attach {
		return nil, nil // a group call through the plugin, its AB prop off
	}
	if pin := pinFor(ctx, user); pin != nil {
		if pin.decision.Attach != AttachTCToken {
			return nil, nil
		}
		return &store.PrivacyToken{User: user, Token: pin.decision.Token}, nil
	}
	v, err := c.view(ctx, user)
	if err != nil {
		return nil, nil
	}
	if !v.holdsValidToken(c.nowUnix()) {
		return nil, nil
	}
	return &store.PrivacyToken{User: v.key, Token: v.entry.token}, nil
}

// PutPrivacyTokens stores tokens whatsmeow received: from privacy_token
// notifications and from history sync. Each token is validated, keyed under
// the contact's LID when known, and written monotonically. Bad tokens are
// skipped with a log line; the rest are still stored.
func (s *TokenStore) PutPrivacyTokens(ctx context.Context, tokens ...store.PrivacyToken) error {
	c := s.core
	if c.closed.Load() {
		return c.innerStore().PutPrivacyTokens(ctx, tokens...)
	}
	acc, err := c.acct(ctx)
	if err != nil {
		// Without the account's state (its database failing at bind),
		// whatsmeow's own store still takes the tokens, as it would alone;
		// the pass over whatsmeow's table at the next bind takes them over.
		return c.innerStore().PutPrivacyTokens(ctx, tokens...)
	}
	var incoming []ReceivedToken
	var senders nativeSenders
	if c.compat.Native() {
		incoming, senders = c.nativePut(ctx, tokens)
	} else {
		incoming = make([]ReceivedToken, len(tokens))
		for i, token := range tokens {
			incoming[i] = ReceivedToken{JID: token.User, Token: token.Token}
			if !token.Timestamp.IsZero() {
				incoming[i].Timestamp = token.Timestamp.Unix()
			}
		}
	}
	// whatsmeow logs the error it gets back on every attempt; the plugin's
	// own log says it once per outage, with what it does about it.
	err = c.receiveTokens(ctx, acc, "whatsmeow", incoming)
	c.recordNativeSenders(ctx, acc, senders)
	if errors.Is(err, errOnlyInWhatsmeow) {
		// Stored as whatsmeow alone would have: nothing for it to retry.
		c.warnOnce("token-store", err, "Failed to store privacy tokens in the plugin's tables; whatsmeow's own store holds them, and sends carry them")
		return nil
	} else if err != nil {
		c.warnOnce("token-store", err, "Failed to store privacy tokens; sends keep the last known ones")
		return err
	}
	c.clearWarned("token-store")
	return nil
}
