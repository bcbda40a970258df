package hooks

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/tctoken/tctoken/sqlstore"
)

const (
	// pruneInterval is how often a long-lived connection prunes again.
	pruneInterval = 24 * time.Hour
	// scheduleTick is how often the connection loop looks at its schedule.
	scheduleTick = time.Second
	// defaultPropsRefresh applies when the server names no interval.
	defaultPropsRefresh = propsRefreshDefault
	// propsRetry and pruneRetry are how soon a failure is tried again.
	propsRetry = 5 * time.Minute
	pruneRetry = 5 * time.Minute
)

// connectedLoop runs for one connection: fetch AB props, ask for the
// reach-out timelock (in the background: nothing waits for it), prune, then
// refresh the props when their interval passes, ask for the timelock again
// when its answer is an interval old, and prune once a day, until the
// connection ends.
func (c *Core) connectedLoop(ctx context.Context, gen uint64) {
	acc, err := c.acct(ctx)
	if err != nil {
		c.log.Warn().Err(err).Msg("Plugin has no account on connect")
		return
	}
	// An import that failed at bind (the database was down) tries again.
	c.startImport(acc)
	c.fetchProps(ctx)
	c.goBackground(func(ctx context.Context) { c.newChatCapLoop(ctx, gen) })
	c.startTimelockQuery(acc, timelockOnConnect)
	c.pruneAndLog(ctx, "connect")
	c.BackfillSalt(ctx, "connect")
	c.everyTickWhileConnected(ctx, gen, func() {
		if c.untilPropsRefresh(acc) <= 0 {
			c.fetchProps(ctx)
		}
		c.startTimelockQuery(acc, timelockOnRefresh)
		if c.untilNextPrune() <= 0 {
			c.pruneAndLog(ctx, "daily")
		}
	})
}

// everyTickWhileConnected runs check every scheduleTick until the
// connection gen ends or the plugin closes. The schedule is checked every
// tick against the plugin's clock rather than slept on until a deadline: a
// disconnect is noticed within a tick, and a clock that jumps (a test's,
// or a suspended laptop's) is obeyed.
func (c *Core) everyTickWhileConnected(ctx context.Context, gen uint64, check func()) {
	ticker := time.NewTicker(scheduleTick)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.stop:
			return
		case <-ticker.C:
		}
		// Client.Disconnect emits no event: without this check the loop of
		// a connection the bridge closed would go on pruning and fetching.
		if c.connGen.Load() != gen || !c.cli.IsConnected() {
			return
		}
		check()
	}
}

func (c *Core) untilNextPrune() time.Duration {
	next := c.nextPrune.Load()
	if next == 0 {
		return 0
	}
	return time.Unix(next, 0).Sub(c.now())
}

func (c *Core) untilPropsRefresh(acc *accountState) time.Duration {
	next := acc.nextPropsFetch.Load()
	if next == 0 {
		return defaultPropsRefresh
	}
	return time.Unix(next, 0).Sub(c.now())
}

// Prune deletes the tokens expired on the receiver side under the timing in
// force, and forgets issuances expired on the sender side.
func (c *Core) Prune(ctx context.Context) (int64, error) {
	acc, err := c.acct(ctx)
	if err != nil {
		return 0, err
	}
	acc.bulkMu.Lock()
	defer acc.bulkMu.Unlock()
	now := c.nowUnix()
	timing := acc.policy.Load().Timing
	// A failed prune changed nothing, and leaves the cache as it was; a
	// successful one is applied to the cached entries in place, never by
	// emptying the cache.
	recvCutoff, sendCutoff := timing.ReceiverCutoff(now), timing.SenderCutoff(now)
	removed, err := acc.store.Prune(ctx, recvCutoff, sendCutoff)
	c.metrics.pruned(removed, err != nil)
	if err == nil {
		c.cachePrune(recvCutoff, sendCutoff)
	} else {
		c.metrics.dbError("prune")
	}
	if err != nil {
		c.nextPrune.Store(c.now().Add(pruneRetry).Unix())
		return removed, fmt.Errorf("prune expired tokens: %w: %w", ErrDatabase, err)
	}
	c.nextPrune.Store(c.now().Add(pruneInterval).Unix())
	return removed, nil
}

func (c *Core) pruneAndLog(ctx context.Context, trigger string) {
	removed, err := c.Prune(ctx)
	if err != nil {
		c.warnOnce("prune", err, "Failed to prune expired privacy tokens")
		return
	}
	c.clearWarned("prune")
	c.log.Info().Int64("removed", removed).Str("trigger", trigger).Msg("Pruned expired privacy tokens")
}

// fetchProps asks the server for AB props, sending the cached hash, and
// merges or replaces the cache. A failure keeps the last known values and
// tries again after propsRetry.
func (c *Core) fetchProps(ctx context.Context) {
	acc, err := c.acct(ctx)
	if err != nil {
		return
	}
	var hash string
	cached := acc.props.Load()
	if cached != nil {
		hash = cached.Hash
	}
	refreshID, _ := acc.refreshID.Load().(string)
	reply, err := sendIQ(ctx, c.cli, "abt", "get", buildPropsQuery(hash, refreshID))
	var parsed *propsReply
	if err == nil {
		parsed, err = parsePropsReply(reply)
	}
	now := c.now()
	if err != nil {
		c.warnOnce("props", err, "Failed to fetch AB props; keeping the last known values")
		acc.nextPropsFetch.Store(now.Add(propsRetry).Unix())
		return
	}
	c.clearWarned("props")
	for _, problem := range parsed.Problems {
		c.log.Warn().Err(problem).Msg("Skipped part of the AB props reply; the rest applies")
	}
	acc.refreshID.Store(parsed.RefreshID)
	acc.nextPropsFetch.Store(now.Add(propsRefreshInterval(parsed.Refresh)).Unix())

	snap := sqlstore.PropsSnapshot{Hash: parsed.Hash, Refresh: parsed.Refresh, FetchedAt: now.Unix(), Values: parsed.Values}
	if parsed.Delta && cached != nil {
		err = acc.store.MergeProps(ctx, snap)
		merged := make(map[int]string, len(cached.Values)+len(parsed.Values))
		maps.Copy(merged, cached.Values)
		maps.Copy(merged, parsed.Values)
		snap.Values = merged
	} else {
		err = acc.store.ReplaceProps(ctx, snap)
	}
	if err != nil {
		c.metrics.dbError("put_props")
		c.warnOnce("props-store", err, "Failed to persist AB props; using them for this session only")
	}
	c.setProps(acc, &snap)
	c.log.Debug().Bool("delta", parsed.Delta).Int("props", len(snap.Values)).Int64("refresh", parsed.Refresh).Msg("Fetched AB props")
}

func (c *Core) setProps(acc *accountState, snap *sqlstore.PropsSnapshot) {
	acc.props.Store(snap)
	policy := ComputePolicy(c.defaults, snap.Values, c.overrides)
	acc.policy.Store(&policy)
}
