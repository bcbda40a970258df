package hooks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/sqlstore"
)

// ErrorCodeNoToken is the server's ack error for a 1:1 message it refused
// for want of a valid token, or because the account is restricted.
const ErrorCodeNoToken = 463

// Diagnosis is why the server refused a 1:1 message with 463, as far as the
// plugin can tell. The two causes the server folds into that one code are a
// missing or invalid token (the first six) and an account reach-out
// timelock (the last), which no token lifts.
type Diagnosis uint8

const (
	DiagnosisUnknown Diagnosis = iota
	// DiagnosisNoToken: no token from the contact was held; a cstoken went
	// instead (or nothing could) and was refused.
	DiagnosisNoToken
	// DiagnosisTokenExpired: the contact's token had expired.
	DiagnosisTokenExpired
	// DiagnosisNoSalt: no tctoken, and no NCT salt for a cstoken.
	DiagnosisNoSalt
	// DiagnosisNoLID: no tctoken, and the contact's LID is unknown, which a
	// cstoken needs.
	DiagnosisNoLID
	// DiagnosisGateOff: the server's AB props turned the token kind off.
	DiagnosisGateOff
	// DiagnosisTokenRefused: a valid tctoken (or the caller's own token)
	// was attached and the server still refused it.
	DiagnosisTokenRefused
	// DiagnosisTimelock: the account is under a reach-out timelock.
	DiagnosisTimelock
)

var diagnosisNames = [...]string{
	DiagnosisUnknown:      "unknown",
	DiagnosisNoToken:      "no_token",
	DiagnosisTokenExpired: "token_expired",
	DiagnosisNoSalt:       "no_salt",
	DiagnosisNoLID:        "no_lid",
	DiagnosisGateOff:      "gate_off",
	DiagnosisTokenRefused: "token_refused",
	DiagnosisTimelock:     "timelock",
}

// Diagnoses lists every diagnosis, for metrics that pre-create their series.
func Diagnoses() []Diagnosis {
	out := make([]Diagnosis, len(diagnosisNames))
	for i := range out {
		out[i] = Diagnosis(i)
	}
	return out
}

// String is the diagnosis's stable snake_case name, for logs and metrics.
func (d Diagnosis) String() string {
	if int(d) < len(diagnosisNames) {
		return diagnosisNames[d]
	}
	return "unknown"
}

// MarshalText makes a Diagnosis its name in JSON.
func (d Diagnosis) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a name MarshalText wrote; an unknown name is
// DiagnosisUnknown, so that a reader older than the writer still reads.
func (d *Diagnosis) UnmarshalText(text []byte) error {
	*d = DiagnosisUnknown
	for i, name := range diagnosisNames {
		if name == string(text) {
			*d = Diagnosis(i)
		}
	}
	return nil
}

// Hint is what an operator can do about a diagnosis, in one sentence.
func (d Diagnosis) Hint() string {
	switch d {
	case DiagnosisNoToken:
		return "the contact has not issued us a token: it comes when they message us or after our token reaches them; ask them to write first"
	case DiagnosisTokenExpired:
		return "the contact's token expired: a new one comes with their next message or presence"
	case DiagnosisNoSalt:
		return "no NCT salt: the plugin re-reads regular_high once per interval; check the phone is online and has the salt"
	case DiagnosisNoLID:
		return "the contact's LID is unknown: it is learned from a usync or their first message"
	case DiagnosisGateOff:
		return "the server's AB props turned the token kind off (see the inspector's props); nothing to fix locally"
	case DiagnosisTokenRefused:
		return "a valid token was attached and refused: the contact may have reinstalled or blocked us; wait for a new token"
	case DiagnosisTimelock:
		return "the account is restricted from messaging new contacts: do not retry, reissue or re-pair; wait until the enforcement ends"
	}
	return "no explanation known"
}

// Classify says what a 463 means, given what was attached and the timelock
// in force. A timelock wins over everything: no token helps under one.
func Classify(decision Decision, timelock TimelockState, now time.Time) Diagnosis {
	if timelock.InForce(now) {
		return DiagnosisTimelock
	}
	switch decision.Cause {
	case CauseValidTCToken, CauseCallerToken:
		return DiagnosisTokenRefused
	case CauseCSTokenNoTCToken:
		return DiagnosisNoToken
	case CauseCSTokenExpired:
		return DiagnosisTokenExpired
	case CauseCSTokenTCTokenOff, CauseCSTokenOff:
		return DiagnosisGateOff
	case CauseNoSalt:
		return DiagnosisNoSalt
	case CauseNoLID:
		return DiagnosisNoLID
	}
	return DiagnosisUnknown
}

// Is463 reports whether err is whatsmeow's ack error 463. whatsmeow has no
// typed code: it wraps ErrServerReturnedError with the number in the text.
func Is463(err error) bool {
	return errors.Is(err, whatsmeow.ErrServerReturnedError) &&
		strings.HasSuffix(err.Error(), fmt.Sprintf("%s %d", whatsmeow.ErrServerReturnedError, ErrorCodeNoToken))
}

// Sources of timelock evidence.
const (
	TimelockFromNotification = "notification"
	TimelockFromPattern      = "pattern"
)

// TimelockState is what the plugin knows of the account's reach-out
// timelock.
type TimelockState struct {
	// Active is the last word: the server's notification, or the pattern.
	Active bool `json:"active"`
	// Source is TimelockFromNotification or TimelockFromPattern; "" when
	// nothing was ever seen.
	Source string `json:"source,omitempty"`
	// Ends is when the server said the enforcement ends; zero if unknown.
	Ends time.Time `json:"ends,omitzero"`
	// Enforcement is the server's enforcement type, if it named one.
	Enforcement string `json:"enforcement,omitempty"`
	// Updated is when the state was last recorded.
	Updated time.Time `json:"updated,omitzero"`
}

// InForce reports whether the timelock applies at now: active, and not
// past the end the server announced.
func (t TimelockState) InForce(now time.Time) bool {
	return t.Active && (t.Ends.IsZero() || now.Before(t.Ends))
}

func timelockFromStored(tl *sqlstore.Timelock) TimelockState {
	if tl == nil {
		return TimelockState{}
	}
	out := TimelockState{Active: tl.Active, Source: tl.Source, Enforcement: tl.Enforcement, Updated: time.Unix(tl.UpdatedAt, 0)}
	if tl.EndsAt > 0 {
		out.Ends = time.Unix(tl.EndsAt, 0)
	}
	return out
}

// TimelockFromStored converts what sqlstore holds, for readers without a
// Core (the inspector).
func TimelockFromStored(tl *sqlstore.Timelock) TimelockState { return timelockFromStored(tl) }

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
		c.setTimelock(ctx, acc, TimelockState{Active: false, Source: TimelockFromPattern}, "a first contact got through")
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
	c.setTimelock(ctx, acc, TimelockState{Active: true, Source: TimelockFromPattern}, "first contacts refused while known contacts get through")
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

// setTimelock records a new timelock state in memory, in the database and
// for the bridge (a TimelockChanged event).
func (c *Core) setTimelock(ctx context.Context, acc *accountState, state TimelockState, why string) {
	state.Updated = c.now()
	acc.timelock.Store(&state)
	stored := sqlstore.Timelock{Active: state.Active, Source: state.Source, Enforcement: state.Enforcement}
	if !state.Ends.IsZero() {
		stored.EndsAt = state.Ends.Unix()
	}
	if err := acc.store.PutTimelock(ctx, stored); err != nil {
		c.metrics.dbError("put_timelock")
		c.log.Warn().Err(err).Msg("Failed to record the reach-out timelock; it holds for this session only")
	}
	c.metrics.timelock(state.InForce(c.now()))
	ev := c.log.Warn()
	if !state.Active {
		ev = c.log.Info()
	}
	ev.Bool("active", state.Active).Str("source", state.Source).Time("ends", state.Ends).Str("why", why).
		Msg("Reach-out timelock changed")
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
	return TimelockState{Source: TimelockFromNotification, Active: tl.Active, Ends: tl.Ends, Enforcement: tl.Enforcement}, true
}

// handleTimelockEvent records the server's timelock notification.
func (c *Core) handleTimelockEvent(state TimelockState) {
	c.goBackground(func(ctx context.Context) {
		acc, err := c.acct(ctx)
		if err != nil {
			return
		}
		c.setTimelock(ctx, acc, state, "server notification")
	})
}

// dispatch hands the bridge a plugin event through whatsmeow's own event
// handlers, from a goroutine of its own: the caller may be inside a
// handler, where dispatching again could wait on whatsmeow's handler lock.
// Close does not wait for it: the bridge's handler of the event may be what
// calls Close, which would then wait on itself.
func (c *Core) dispatch(evt any) {
	if c.closed.Load() {
		return
	}
	go c.cli.DangerousInternals().DispatchEvent(evt)
}
