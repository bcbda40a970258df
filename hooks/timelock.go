package hooks

import (
	"context"
	"sync"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/sqlstore"
)

// Sources of timelock evidence. The server's word (its answer to the
// timelock query, or its notification) outranks the pattern: the latest
// word of the server always applies, and the pattern applies only while
// no fresh word of the server stands against it (see patternOverruled).
const (
	TimelockFromQuery        = "query"
	TimelockFromNotification = "notification"
	TimelockFromPattern      = "pattern"
)

// TimelockState is what the plugin knows of the account's reach-out
// timelock.
type TimelockState struct {
	// Active is the last word: the server's answer to the timelock query,
	// its notification, or the pattern.
	Active bool `json:"active"`
	// Source is TimelockFromQuery, TimelockFromNotification or
	// TimelockFromPattern; "" when nothing was ever seen.
	Source string `json:"source,omitempty"`
	// Ends is when the server said the enforcement ends; zero if unknown
	// (the pattern's, which lasts until a first contact gets through). A
	// lock the server named without an end ends a minute after it was
	// heard of, unless the server says more (timelockDefaultEnd).
	Ends time.Time `json:"ends,omitzero"`
	// Enforcement is the server's enforcement type, if it named one, as
	// the server spells it: the set is open (RESTRICT_ALL_COMPANIONS is
	// seen in the wild and in no library's list).
	Enforcement string `json:"enforcement,omitempty"`
	// Updated is when the state was last recorded, or confirmed by the
	// server's word.
	Updated time.Time `json:"updated,omitzero"`
}

// InForce reports whether the timelock applies at now: active, and not
// past the end the server announced.
func (t TimelockState) InForce(now time.Time) bool {
	return t.Active && (t.Ends.IsZero() || now.Before(t.Ends))
}

// TimelockFromStored converts what sqlstore holds: the running plugin at
// bind, and readers without a Core (the inspector).
func TimelockFromStored(tl *sqlstore.Timelock) TimelockState {
	if tl == nil {
		return TimelockState{}
	}
	return TimelockState{Active: tl.Active, Source: tl.Source, Enforcement: tl.Enforcement, Ends: unixOrZero(tl.EndsAt), Updated: time.Unix(tl.UpdatedAt, 0)}
}

// The pattern: 463s to first contacts that carried a proper cstoken, from
// at least patternFirstContacts distinct contacts within patternWindow,
// while a message carrying a valid tctoken got through in that window. A
// single refused first contact is as likely the contact's own doing.
const (
	patternFirstContacts = 2
	patternWindow        = 24 * time.Hour
)

// timelockWatch follows acks for the pattern. It is per account: bind
// replaces it.
type timelockWatch struct {
	mu sync.Mutex
	// refused: first contacts refused with a cstoken attached, by key,
	// since the last first contact that got through.
	refused map[types.JID]int64
	// knownAccepted: the last time a message with a valid tctoken was
	// accepted.
	knownAccepted int64
	// query is the state of the timelock query (timelockquery.go).
	query timelockQueryState
}

// firstContact reports whether a decision is that of a contact we hold no
// valid token from, and that carried the fallback: the sends the pattern
// counts. A send without any token says nothing about the account.
func firstContact(decision Decision) bool {
	return decision.Attach == AttachCSToken
}

// noteAccepted feeds an accepted 1:1 send to the pattern, and lifts a
// timelock that the pattern alone had inferred once a first contact got
// through.
func (c *Core) noteAccepted(ctx context.Context, decision Decision) {
	acc := c.account.Load()
	if acc == nil {
		return
	}
	now := c.nowUnix()
	w := &acc.watch
	w.mu.Lock()
	lift := false
	switch {
	case decision.Cause == CauseValidTCToken:
		w.knownAccepted = now
	case firstContact(decision):
		clear(w.refused)
		current := acc.timelock.Load()
		lift = current != nil && current.Active && current.Source == TimelockFromPattern
	}
	w.mu.Unlock()
	if lift {
		c.recordTimelock(ctx, acc, TimelockState{Active: false, Source: TimelockFromPattern}, "a first contact got through")
	}
}

// notePatternRefusal feeds a refused first contact to the pattern and
// returns true when it now points to a timelock, which it then records.
func (c *Core) notePatternRefusal(ctx context.Context, acc *accountState, key types.JID, decision Decision) bool {
	if !firstContact(decision) {
		return false
	}
	now := c.nowUnix()
	w := &acc.watch
	w.mu.Lock()
	if w.refused == nil {
		w.refused = make(map[types.JID]int64)
	}
	w.refused[key] = now
	for other, at := range w.refused {
		if at < now-int64(patternWindow/time.Second) {
			delete(w.refused, other)
		}
	}
	matches := len(w.refused) >= patternFirstContacts && w.knownAccepted >= now-int64(patternWindow/time.Second) && w.knownAccepted > 0
	w.mu.Unlock()
	if !matches {
		return false
	}
	if current := acc.timelock.Load(); current != nil && current.InForce(c.now()) {
		return true
	}
	if c.patternOverruled(acc) {
		// The server said lately that no timelock applies: ask it again
		// rather than guess against its word.
		c.startTimelockQuery(acc, timelockOnPattern)
		return false
	}
	c.recordTimelock(ctx, acc, TimelockState{Active: true, Source: TimelockFromPattern}, "first contacts refused while known contacts get through")
	return true
}

// Timelock is the timelock state in force for the bound account.
func (c *Core) Timelock() TimelockState {
	if acc := c.account.Load(); acc != nil {
		if tl := acc.timelock.Load(); tl != nil {
			return *tl
		}
	}
	return TimelockState{}
}

// recordTimelock records what is now known of the timelock: in memory, in
// the database and, when it changed whether, until when or how the account
// is restricted, for the bridge (a TimelockChanged event). The server's
// word that repeats what is known is recorded (its source and time say
// when the server last confirmed it) without an event; the pattern's
// repeat is not recorded at all. Which evidence may overrule which is the
// caller's to decide (patternOverruled).
func (c *Core) recordTimelock(ctx context.Context, acc *accountState, state TimelockState, why string) {
	now := c.now()
	state.Updated = now
	current := acc.timelock.Load()
	changed := current == nil || current.Active != state.Active || !current.Ends.Equal(state.Ends) || current.Enforcement != state.Enforcement
	if !changed && state.Source == TimelockFromPattern && current.Source == TimelockFromPattern {
		return
	}
	acc.timelock.Store(&state)
	stored := sqlstore.Timelock{Active: state.Active, Source: state.Source, Enforcement: state.Enforcement, EndsAt: zeroOrUnix(state.Ends)}
	if err := acc.store.PutTimelock(ctx, stored); err != nil {
		c.metrics.dbError("put_timelock")
		c.log.Warn().Err(err).Msg("Failed to record the reach-out timelock; it holds for this session only")
	}
	c.metrics.timelock(state.InForce(now))
	if !changed {
		c.log.Debug().Bool("active", state.Active).Str("source", state.Source).Time("ends", state.Ends).Str("why", why).
			Msg("Reach-out timelock confirmed")
		return
	}
	ev := c.log.Warn()
	if !state.Active {
		ev = c.log.Info()
	}
	ev.Bool("active", state.Active).Str("source", state.Source).Time("ends", state.Ends).Str("enforcement", state.Enforcement).
		Str("why", why).Msg("Reach-out timelock changed")
	c.dispatch(&TimelockChanged{State: state})
}

// TimelockChanged is dispatched through whatsmeow's event handlers when the
// plugin learns that the account's reach-out timelock began or ended.
type TimelockChanged struct {
	State TimelockState
}

// readTimelockEvent reads the server's timelock notification out of a
// whatsmeow event (the newer whatsmeow's NotifyAccountReachoutTimelock;
// whatsmeow 2025-12 dispatches none), or reports false for any other event.
func (c *Core) readTimelockEvent(evt any) (TimelockState, bool) {
	tl, ok := c.compat.Timelock(evt)
	if !ok {
		return TimelockState{}, false
	}
	return withDefaultEnd(TimelockState{Source: TimelockFromNotification, Active: tl.Active, Ends: tl.Ends, Enforcement: tl.Enforcement}, c.now()), true
}

// handleTimelockEvent records the server's timelock notification.
func (c *Core) handleTimelockEvent(state TimelockState) {
	c.goBackground(func(ctx context.Context) {
		acc, err := c.acct(ctx)
		if err != nil {
			return
		}
		c.recordTimelock(ctx, acc, state, "server notification")
	})
}

// unixOrZero and zeroOrUnix convert the stored Unix seconds, where 0 means
// "none", to and from the zero time.
func unixOrZero(sec int64) time.Time {
	if sec <= 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0)
}

func zeroOrUnix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
