package hooks

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.mau.fi/whatsmeow/appstate"
	waServerSync "go.mau.fi/whatsmeow/proto/waServerSync"
	"go.mau.fi/whatsmeow/proto/waSyncAction"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/tctoken/tctoken/sqlstore"
)

// saltState is the state of the NCT salt and the cstokens over it: the
// cstoken cache, the salt backfill's pacing, and the order of app-state
// salt changes.
type saltState struct {
	cstokens *lru.Cache[types.JID, cstokenEntry]
	// backfillEvery is how long a salt backfill attempt is remembered.
	backfillEvery time.Duration
	backfilling   atomic.Bool // a salt backfill is under way
	// saltSeq numbers app-state salt changes in the order whatsmeow
	// applied them, as far as the plugin sees it (the salt store's calls on
	// whatsmeow 33cfac51, the event order on 2025-12), so that they apply
	// in it.
	saltSeq atomic.Uint64
	// saltPuts keeps the seqs PutNCTSalt took (whatsmeow 33cfac51) until
	// the events.AppState of the same SET comes to use them.
	saltPuts saltPuts
	// beforeSaltChange, when set by a test, runs before an app-state salt
	// change takes the salt lock, so that tests can order two of them.
	beforeSaltChange func(salt []byte)
	// afterSaltRescanFetch, when set by a test, runs once a re-read of
	// regular_high has fetched and decoded the collection and before it
	// applies what it found, so that tests can change the salt meanwhile.
	afterSaltRescanFetch func(ctx context.Context)
}

const (
	// indexNCTSalt is the app-state index of the NCT salt mutation.
	indexNCTSalt = "nct_salt_sync"
	// rescanDelay lets whatsmeow finish applying a batch of patches before
	// the plugin reads the same patches again.
	rescanDelay = 200 * time.Millisecond
	// rescanMaxFetches bounds one re-read of regular_high: a server that
	// always says more patches follow must not keep it fetching forever.
	rescanMaxFetches = 64
)

// applyAppStateSalt stores a salt from an app-state SET. App state is the
// authoritative source and overrides whatever was stored, unless a change
// learned later (a higher seq, see saltSeq) was applied first.
func (c *Core) applyAppStateSalt(ctx context.Context, value *waSyncAction.SyncActionValue, seq uint64) {
	salt := c.compat.AppStateSalt(value)
	if len(salt) == 0 {
		c.log.Warn().Msg("Ignored an nct_salt_sync mutation with no salt the plugin can read")
		return
	}
	if c.beforeSaltChange != nil {
		c.beforeSaltChange(salt)
	}
	if err := c.setAppStateSalt(ctx, salt, seq); err != nil {
		c.log.Err(err).Msg("Failed to store the NCT salt from app state")
	}
}

// setNewestAppStateSalt stores an authoritative salt, as the newest change.
func (c *Core) setNewestAppStateSalt(ctx context.Context, salt []byte) error {
	return c.setAppStateSalt(ctx, salt, c.saltSeq.Add(1))
}

func (c *Core) setAppStateSalt(ctx context.Context, salt []byte, seq uint64) error {
	return c.changeSalt(ctx, sqlstore.SaltFromAppState, salt, seq, func(acc *accountState) (bool, error) {
		return true, acc.store.SetAppStateSalt(ctx, salt)
	})
}

// removeAppStateSalt forgets the salt because app state removed it; history
// sync can never bring it back. seq orders the removal as setAppStateSalt's
// does a SET.
func (c *Core) removeAppStateSalt(ctx context.Context, seq uint64) error {
	return c.changeSalt(ctx, sqlstore.SaltFromAppState, nil, seq, func(acc *accountState) (bool, error) {
		return true, acc.store.RemoveAppStateSalt(ctx)
	})
}

// applyHistorySalt is the backfill: it applies only when no salt was ever
// stored and app state never spoke.
func (c *Core) applyHistorySalt(ctx context.Context, salt []byte) {
	if len(salt) == 0 {
		return
	}
	err := c.changeSalt(ctx, sqlstore.SaltFromHistorySync, salt, 0, func(acc *accountState) (bool, error) {
		return acc.store.SetHistorySalt(ctx, salt)
	})
	if err != nil {
		c.log.Err(err).Msg("Failed to store the NCT salt from history sync")
	}
}

// changeSalt runs one salt write and then updates the salt in memory, under
// the account's salt lock, so that two sources racing (app state and history
// sync both arrive around the first sync) leave memory and database alike.
// write reports whether it applied.
//
// seq orders app-state changes: each runs on a goroutine of its own, so two
// SETs of one sync can reach the lock in either order, and a change older
// than the last one applied is dropped. History-sync backfills pass 0; the
// database's rules order them.
func (c *Core) changeSalt(ctx context.Context, source sqlstore.SaltSource, salt []byte, seq uint64, write func(*accountState) (bool, error)) error {
	if err := checkSaltSize(source, salt); err != nil {
		return err
	}
	acc, err := c.acct(ctx)
	if err != nil {
		return err
	}
	acc.saltMu.Lock()
	defer acc.saltMu.Unlock()
	if seq != 0 && seq < acc.saltSeq {
		c.log.Debug().Str("source", string(source)).Msg("Ignored an NCT salt change overtaken by a newer one")
		return nil
	}
	applied, err := write(acc)
	if err != nil {
		c.metrics.dbError("put_salt")
		return fmt.Errorf("store NCT salt from %s: %w", source, err)
	}
	acc.saltSeq = max(acc.saltSeq, seq)
	switch {
	case !applied:
		c.log.Debug().Str("source", string(source)).Msg("Ignored the NCT salt: app state or an earlier salt takes precedence")
	case salt == nil:
		acc.salt.Store(nil)
		c.log.Info().Str("source", string(source)).Msg("NCT salt removed by app state")
	default:
		saltCopy := append([]byte(nil), salt...)
		acc.salt.Store(&saltCopy)
		c.log.Info().Str("salt", ShortHash(salt)).Str("source", string(source)).Msg("Stored NCT salt")
	}
	return nil
}

// Salt returns the NCT salt in force, or nil.
func (c *Core) Salt() []byte {
	if acc := c.account.Load(); acc != nil {
		if salt := acc.salt.Load(); salt != nil {
			return *salt
		}
	}
	return nil
}

// rescanSaltSnapshot reads regular_high again after a full sync, during
// which whatsmeow emits no events unless the bridge opted in.
func (c *Core) rescanSaltSnapshot(ctx context.Context) {
	c.rescanSalt(ctx, 0)
}

// rescanResult is what one re-read of regular_high found.
type rescanResult uint8

const (
	rescanFailed  rescanResult = iota // fetch or decode failed
	rescanFound                       // a SET of the salt was applied
	rescanAbsent                      // no salt in the collection (or a REMOVE)
	rescanDropped                     // overtaken by a removal; nothing applied
)

// rescanSalt fetches regular_high patches from a version and decodes them
// with whatsmeow's own decoder over a read-only view of the app-state
// store, so that whatsmeow's sync state is never touched. The last
// nct_salt_sync mutation seen wins.
func (c *Core) rescanSalt(ctx context.Context, fromVersion uint64) rescanResult {
	view := &store.Device{
		Log:          waLog.Noop,
		AppStateKeys: c.cli.Store.AppStateKeys,
		AppState:     readOnlyAppState{c.cli.Store.AppState},
	}
	proc := appstate.NewProcessor(view, waLog.Noop)
	state := appstate.HashState{Version: fromVersion}
	snapshot := fromVersion == 0
	// What the re-read finds is as old as its first fetch: a change the
	// plugin learns of after the fetch went out may be missing from what
	// the server answered, so it must order after the re-read, whenever
	// the re-read comes to apply its result. Numbered at the end instead,
	// a re-read that fetched before a SET and finished after the SET's
	// event applied would withdraw the salt the SET brought.
	seq := c.saltSeq.Add(1)
	var removalsBefore uint64
	if c.appState != nil {
		removalsBefore = c.appState.removals.Load()
	}
	var last *appstate.Mutation
	for fetches := 0; ; fetches++ {
		if fetches == rescanMaxFetches {
			c.log.Warn().Uint64("from_version", fromVersion).Uint64("to_version", state.Version).Int("fetches", fetches).
				Msg("Stopped re-reading regular_high for the NCT salt: the server kept reporting more patches")
			return rescanFailed
		}
		//lint:ignore SA1019 whatsmeow exports no way to re-read one app-state collection without touching its sync state.
		list, err := c.cli.DangerousInternals().FetchAppStatePatches(ctx, appstate.WAPatchRegularHigh, state.Version, snapshot)
		if err != nil {
			c.log.Warn().Err(err).Uint64("from_version", state.Version).Msg("Failed to re-read regular_high for the NCT salt")
			return rescanFailed
		}
		snapshot = false
		mutations, newState, err := proc.DecodePatches(ctx, list, state, false)
		if err != nil {
			c.log.Warn().Err(err).Uint64("from_version", state.Version).Msg("Failed to decode regular_high for the NCT salt")
			// Most often the collection's keys never reached this
			// device: ask the phone for them, as whatsmeow does for its
			// own syncs, so that the next attempt can decode.
			//lint:ignore SA1019 whatsmeow exports no other way to ask the phone for the collection's missing keys.
			c.cli.DangerousInternals().RequestMissingAppStateKeys(ctx, list)
			return rescanFailed
		}
		for i := range mutations {
			if len(mutations[i].Index) > 0 && mutations[i].Index[0] == indexNCTSalt {
				last = &mutations[i]
			}
		}
		state = newState
		if !list.HasMorePatches {
			break
		}
	}
	if c.afterSaltRescanFetch != nil {
		c.afterSaltRescanFetch(ctx)
	}
	c.log.Debug().Uint64("from_version", fromVersion).Uint64("to_version", state.Version).Bool("found", last != nil).
		Msg("Re-read regular_high for the NCT salt")
	if c.appState != nil && c.appState.removals.Load() != removalsBefore {
		c.log.Debug().Msg("Dropped a re-read of regular_high that a later salt removal overtook")
		return rescanDropped
	}
	switch {
	case last == nil && fromVersion == 0:
		// A full snapshot without the mutation: app state holds no salt
		// (it was removed while we were away). Only a salt app state gave
		// us is withdrawn; a history-sync backfill stays.
		c.withdrawAppStateSalt(ctx, seq)
		return rescanAbsent
	case last == nil:
		return rescanAbsent
	case last.Operation == waServerSync.SyncdMutation_REMOVE:
		if err := c.removeAppStateSalt(ctx, seq); err != nil {
			c.log.Err(err).Msg("Failed to remove the NCT salt")
		}
		return rescanAbsent
	default:
		c.applyAppStateSalt(ctx, last.Action, seq)
		return rescanFound
	}
}

// withdrawAppStateSalt removes the salt if app state was its source, unless
// a change ordered after seq (the re-read's) applied meanwhile.
func (c *Core) withdrawAppStateSalt(ctx context.Context, seq uint64) {
	acc, err := c.acct(ctx)
	if err != nil {
		return
	}
	salt, source, _, err := acc.store.GetSalt(ctx)
	if err != nil {
		c.log.Err(err).Msg("Failed to read the NCT salt")
		return
	}
	if len(salt) > 0 && source == sqlstore.SaltFromAppState {
		if err = c.removeAppStateSalt(ctx, seq); err != nil {
			c.log.Err(err).Msg("Failed to remove the NCT salt")
		}
	}
}

// readOnlyAppState lets whatsmeow's decoder read MACs but keeps it from
// writing: the plugin's re-read must not disturb whatsmeow's sync state.
type readOnlyAppState struct{ store.AppStateStore }

func (readOnlyAppState) PutAppStateVersion(context.Context, string, uint64, [128]byte) error {
	return nil
}
func (readOnlyAppState) DeleteAppStateVersion(context.Context, string) error { return nil }
func (readOnlyAppState) PutAppStateMutationMACs(context.Context, string, uint64, []store.AppStateMutationMAC) error {
	return nil
}
func (readOnlyAppState) DeleteAppStateMutationMACs(context.Context, string, [][]byte) error {
	return nil
}

// appStateWatch wraps Client.Store.AppState to notice removals in
// regular_high: whatsmeow 2025-12 emits no event for a REMOVE, so a removed
// mutation there makes the plugin re-read the patches it just applied.
type appStateWatch struct {
	store.AppStateStore
	core *Core

	mu          sync.Mutex
	fromVersion uint64
	pending     bool
	// removals counts salt removals whatsmeow applied directly (newer
	// whatsmeow versions, through SaltStore): a re-read that began before
	// one may have fetched the patches before the REMOVE, and is dropped.
	removals atomic.Uint64
}

func (w *appStateWatch) GetAppStateVersion(ctx context.Context, name string) (uint64, [128]byte, error) {
	version, hash, err := w.AppStateStore.GetAppStateVersion(ctx, name)
	if err == nil && name == string(appstate.WAPatchRegularHigh) {
		w.mu.Lock()
		if !w.pending {
			w.fromVersion = version
		}
		w.mu.Unlock()
	}
	return version, hash, err
}

func (w *appStateWatch) DeleteAppStateMutationMACs(ctx context.Context, name string, indexMACs [][]byte) error {
	err := w.AppStateStore.DeleteAppStateMutationMACs(ctx, name, indexMACs)
	if name == string(appstate.WAPatchRegularHigh) && len(indexMACs) > 0 {
		w.scheduleRescan()
	}
	return err
}

func (w *appStateWatch) scheduleRescan() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending {
		return
	}
	w.pending = true
	from := w.fromVersion
	w.core.goBackground(func(ctx context.Context) {
		select {
		case <-ctx.Done():
			return
		case <-w.core.stop:
			return
		case <-time.After(rescanDelay):
		}
		w.mu.Lock()
		w.pending = false
		w.mu.Unlock()
		w.core.rescanSalt(ctx, from)
	})
}
