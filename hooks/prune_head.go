package hooks

import (
	"context"
	"fmt"
	"time"
)

// expiredTokenDeleter is the pruning method that whatsmeow after 2025-12
// added to its PrivacyTokenStore interface. It is asked for by assertion so
// that the plugin builds against both versions.
type expiredTokenDeleter interface {
	DeleteExpiredPrivacyTokens(ctx context.Context, cutoff time.Time) (int64, error)
}

// DeleteExpiredPrivacyTokens is called by whatsmeow versions that prune by
// themselves (on connect and at most daily), with a cutoff from their
// hard-coded 7 days × 4 window. The plugin's tokens are left alone: it
// prunes them itself on connect and daily by the window the server's AB
// props set, which may be much longer (26 buckets have been seen), so a
// token its policy still calls valid is kept. whatsmeow's own table is
// pruned with the plugin's cutoff instead of whatsmeow's, so that it keeps
// no token the plugin dropped and loses none the plugin keeps. On whatsmeow
// 2025-12 nothing calls this.
func (s *TokenStore) DeleteExpiredPrivacyTokens(ctx context.Context, cutoff time.Time) (int64, error) {
	c := s.core
	inner, innerPrunes := c.innerStore().(expiredTokenDeleter)
	if !innerPrunes {
		return 0, nil
	}
	if c.closed.Load() {
		return inner.DeleteExpiredPrivacyTokens(ctx, cutoff)
	}
	own := time.Unix(c.Policy().Timing.ReceiverCutoff(c.nowUnix()), 0)
	removed, err := inner.DeleteExpiredPrivacyTokens(ctx, own)
	if err != nil {
		return removed, fmt.Errorf("prune whatsmeow's own expired tokens before %d: %w", own.Unix(), err)
	}
	return removed, nil
}
