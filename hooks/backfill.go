package hooks

import (
	"context"
	"time"
)

// defaultSaltBackfillInterval is how long one salt backfill attempt is
// remembered: a phone that has no salt is asked again once a day, not on
// every reconnect.
const defaultSaltBackfillInterval = 24 * time.Hour

// BackfillResult is what BackfillSalt did.
type BackfillResult uint8

const (
	// BackfillNotDue: the salt is known, or the last attempt is younger
	// than the interval.
	BackfillNotDue BackfillResult = iota
	// BackfillFound: the re-read found the salt and stored it.
	BackfillFound
	// BackfillAbsent: regular_high holds no salt; remembered.
	BackfillAbsent
	// BackfillFailed: the re-read failed (keys missing: the phone was
	// asked for them); remembered as well, so it does not loop.
	BackfillFailed
)

var backfillNames = [...]string{"not_due", "found", "absent", "failed"}

func (r BackfillResult) String() string {
	if int(r) < len(backfillNames) {
		return backfillNames[r]
	}
	return "unknown"
}

// BackfillSalt re-reads the regular_high collection for the NCT salt when
// none is known, at most once per interval per account whatever triggers
// it (a connect, a 463): a session paired before the salt existed never
// gets it otherwise, because whatsmeow syncs a collection only when told it
// changed. The re-read leaves whatsmeow's sync state alone.
func (c *Core) BackfillSalt(ctx context.Context, trigger string) BackfillResult {
	if len(c.Salt()) > 0 {
		return BackfillNotDue
	}
	acc, err := c.acct(ctx)
	if err != nil {
		return BackfillNotDue
	}
	// One attempt at a time, and none waits for another: a 463 that finds
	// one under way (the connect's, whose fetches may take long) goes on
	// without it, and a resend still sees the salt once that one stores it.
	if !c.backfilling.CompareAndSwap(false, true) {
		c.log.Debug().Str("trigger", trigger).Msg("Salt backfill already under way")
		return BackfillNotDue
	}
	defer c.backfilling.Store(false)
	if len(c.Salt()) > 0 {
		return BackfillNotDue
	}
	// A device that holds no app-state key at all is still waiting for the
	// phone's key share after pairing, and whatsmeow syncs every
	// collection once the keys arrive: nothing to backfill yet.
	if keyID, err := c.cli.Store.AppStateKeys.GetLatestAppStateSyncKeyID(ctx); err != nil || len(keyID) == 0 {
		c.log.Debug().Str("trigger", trigger).Msg("Salt backfill waits for the app-state keys")
		return BackfillNotDue
	}
	now := c.now()
	last, err := acc.store.GetSaltBackfill(ctx)
	if err != nil {
		c.metrics.dbError("get_salt_backfill")
		c.warnOnce("backfill", err, "Failed to read when the salt was last backfilled; not trying now")
		return BackfillNotDue
	}
	if last != nil && now.Before(time.Unix(last.AttemptedAt, 0).Add(c.backfillEvery)) {
		c.log.Debug().Str("trigger", trigger).Str("last_result", last.Result).Time("last_attempt", time.Unix(last.AttemptedAt, 0)).
			Msg("Salt backfill not due")
		return BackfillNotDue
	}
	var result BackfillResult
	switch c.rescanSalt(ctx, 0) {
	case rescanFound:
		result = BackfillFound
	case rescanAbsent, rescanDropped:
		result = BackfillAbsent
	default:
		result = BackfillFailed
	}
	if result == BackfillFound && len(c.Salt()) == 0 {
		// Found but refused (too large, or the write failed).
		result = BackfillFailed
	}
	if err := acc.store.PutSaltBackfill(ctx, now.Unix(), result.String()); err != nil {
		c.metrics.dbError("put_salt_backfill")
		c.log.Warn().Err(err).Msg("Failed to record the salt backfill attempt")
	}
	c.log.Info().Str("trigger", trigger).Stringer("result", result).Msg("Salt backfill attempted")
	return result
}
