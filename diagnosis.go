package tctoken

import (
	"context"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/hooks"
)

// Diagnosis is why the server refused a 1:1 message with 463.
type Diagnosis = hooks.Diagnosis

// The diagnoses of a 463. All but DiagnosisTimelock are about tokens;
// DiagnosisTimelock is the account's reach-out timelock, which no token
// lifts. DiagnosisNewChatCap is given only by the guard
// (Recovery.GuardFirstContacts), for a first contact kept back because
// the new-chat cap is CAPPED.
const (
	DiagnosisUnknown      = hooks.DiagnosisUnknown
	DiagnosisNoToken      = hooks.DiagnosisNoToken
	DiagnosisTokenExpired = hooks.DiagnosisTokenExpired
	DiagnosisNoSalt       = hooks.DiagnosisNoSalt
	DiagnosisNoLID        = hooks.DiagnosisNoLID
	DiagnosisGateOff      = hooks.DiagnosisGateOff
	DiagnosisTokenRefused = hooks.DiagnosisTokenRefused
	DiagnosisTimelock     = hooks.DiagnosisTimelock
	DiagnosisNewChatCap   = hooks.DiagnosisNewChatCap
)

// SendError is what Plugin.SendMessage returns for a 1:1 message refused
// with 463: errors.As finds it, and it wraps whatsmeow's error. A first
// contact that Recovery.GuardFirstContacts kept off the wire is one too,
// with Guarded set, matching ErrFirstContactGuarded.
type SendError = hooks.SendError

// SendDiagnosed is dispatched through the client's event handlers (those
// added with Client.AddEventHandler) for every 463 that Plugin.SendMessage
// diagnosed, with what the SendError carries.
type SendDiagnosed = hooks.SendDiagnosed

// TimelockChanged is dispatched through the client's event handlers when
// what is known of the account's reach-out timelock changes (it begins,
// ends, or the server names another end or enforcement), by the server's
// word (the timelock query at connect, or its notification) or by the
// pattern of 463s. A word of the server that repeats what is known
// dispatches nothing.
type TimelockChanged = hooks.TimelockChanged

// TimelockState is what is known of the account's reach-out timelock.
type TimelockState = hooks.TimelockState

// Where a TimelockState's Source says the plugin learned of the timelock:
// the server's answer to the timelock query, the server's notification,
// or the pattern of 463s. The server's latest word always applies; the
// pattern applies only when the server has not spoken within the hour, or
// the last query failed.
const (
	TimelockFromQuery        = hooks.TimelockFromQuery
	TimelockFromNotification = hooks.TimelockFromNotification
	TimelockFromPattern      = hooks.TimelockFromPattern
)

// Explanation is everything known about one contact: the entry, expiry,
// sender timestamp, issuance, the decision and its cause, the salt, the
// LID, the timelock, and how a 463 would be diagnosed. It holds no token
// or salt bytes.
type Explanation = hooks.Explanation

// Recovery is the policy for what follows a 463; see WithRecovery.
type Recovery = hooks.Recovery

// RecoveryReport says what the recovery did after one 463.
type RecoveryReport = hooks.RecoveryReport

// DefaultRecovery diagnoses, then reissues our token once per contact and
// sender bucket.
func DefaultRecovery() Recovery { return hooks.DefaultRecovery() }

// WithRecovery sets what the plugin does about refused sends: after a 463,
// and, with GuardFirstContacts, before a first contact while the server
// said that a reach-out timelock is in force. Recovery{} only diagnoses. Nothing is
// done after a 463 under a reach-out timelock.
func WithRecovery(r Recovery) Option {
	return Option{func(cfg *hooks.Config) { cfg.Recovery = &r }}
}

// WithSaltBackfillInterval sets how long one salt backfill attempt is
// remembered (default 24 hours).
func WithSaltBackfillInterval(interval time.Duration) Option {
	return Option{func(cfg *hooks.Config) { cfg.SaltBackfillInterval = interval }}
}

// Explain returns everything the plugin knows about one contact (by PN or
// LID) and what the next message to it would carry, and why. The inspector
// (cmd/tctoken-inspect --jid) shows the same from the database.
func (p *Plugin) Explain(ctx context.Context, jid types.JID) (Explanation, error) {
	return p.core.Explain(ctx, jid)
}

// Timelock returns what is known of the account's reach-out timelock, and
// where it was learned (Source). The plugin asks the server at every
// connect, at most once per fetch TTL (AB prop 20649, an hour by
// default); until the answer comes, the state recorded last stands.
func (p *Plugin) Timelock() TimelockState { return p.core.Timelock() }

// RefreshTimelock asks the server for the account's reach-out timelock
// now, whatever the interval, and returns the state in force afterwards.
// The plugin asks by itself at connect and once per fetch TTL; a bridge
// calls this when it has a reason to think the lock changed, such as a
// first contact refused with 463. When the server gives no usable answer, the last known
// state stays in force and the error matches ErrTimelockQuery.
func (p *Plugin) RefreshTimelock(ctx context.Context) (TimelockState, error) {
	return p.core.RefreshTimelock(ctx)
}

// BackfillResult is what one BackfillSalt call did. Its String is the
// result as logged and stored: "not_due", "found", "absent" or "failed".
type BackfillResult = hooks.BackfillResult

// The results of BackfillSalt.
const (
	// BackfillNotDue: nothing was read. The salt is known, the last attempt
	// is younger than the interval, another attempt is under way, the
	// app-state keys have not arrived yet, or the account is not loaded.
	BackfillNotDue = hooks.BackfillNotDue
	// BackfillFound: the re-read found the salt and stored it.
	BackfillFound = hooks.BackfillFound
	// BackfillAbsent: app state holds no salt; the attempt is remembered.
	BackfillAbsent = hooks.BackfillAbsent
	// BackfillFailed: the re-read failed, or the salt it found could not
	// be stored; the attempt is remembered, so it does not loop.
	BackfillFailed = hooks.BackfillFailed
)

// BackfillSalt re-reads the NCT salt from app state now if none is known
// and the last attempt is older than the interval. The plugin does this on
// every connect by itself.
func (p *Plugin) BackfillSalt(ctx context.Context) BackfillResult {
	return p.core.BackfillSalt(ctx, "bridge")
}
