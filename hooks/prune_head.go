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
// hard-coded 7 days × 4 window. That cutoff is ignored: the plugin prunes
// by the window the server's AB props set, which may be much longer (26
// buckets have been seen), so a token the policy still calls valid is kept.
// whatsmeow's own table is pruned with the same cutoff, so that it does not
// keep what the plugin dropped. On whatsmeow 2025-12 nothing calls this.
func (s *TokenStore) DeleteExpiredPrivacyTokens(ctx context.Context, cutoff time.Time) (int64, error) {
	c := (*Core)(s)
	inner, innerPrunes := c.inner.(expiredTokenDeleter)
	if c.closed.Load() {
		if innerPrunes {
			return inner.DeleteExpiredPrivacyTokens(ctx, cutoff)
		}
		return 0, nil
	}
	removed, err := c.Prune(ctx)
	if err != nil {
		c.warnOnce("prune", err, "Failed to prune expired privacy tokens")
		return removed, err
	}
	c.clearWarned("prune")
	c.log.Info().Int64("removed", removed).Str("trigger", "whatsmeow").Msg("Pruned expired privacy tokens")
	if innerPrunes {
		own := time.Unix(c.Policy().Timing.ReceiverCutoff(c.nowUnix()), 0)
		if _, err := inner.DeleteExpiredPrivacyTokens(ctx, own); err != nil {
			return removed, fmt.Errorf("prune whatsmeow's own expired tokens before %d: %w", own.Unix(), err)
		}
	}
	return removed, nil
}
