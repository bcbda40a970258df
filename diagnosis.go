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
// lifts.
const (
	DiagnosisUnknown      = hooks.DiagnosisUnknown
	DiagnosisNoToken      = hooks.DiagnosisNoToken
	DiagnosisTokenExpired = hooks.DiagnosisTokenExpired
	DiagnosisNoSalt       = hooks.DiagnosisNoSalt
	DiagnosisNoLID        = hooks.DiagnosisNoLID
	DiagnosisGateOff      = hooks.DiagnosisGateOff
	DiagnosisTokenRefused = hooks.DiagnosisTokenRefused
	DiagnosisTimelock     = hooks.DiagnosisTimelock
)

// SendError is what Plugin.SendMessage returns for a 1:1 message refused
// with 463: errors.As finds it, and it wraps whatsmeow's error.
type SendError = hooks.SendError

// SendDiagnosed is dispatched through the client's event handlers (those
// added with Client.AddEventHandler) for every 463 that Plugin.SendMessage
// diagnosed, with what the SendError carries.
type SendDiagnosed = hooks.SendDiagnosed

// TimelockChanged is dispatched through the client's event handlers when
// the account's reach-out timelock begins or ends, by the server's word
// or by the pattern of 463s.
type TimelockChanged = hooks.TimelockChanged

// TimelockState is what is known of the account's reach-out timelock.
type TimelockState = hooks.TimelockState

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

// WithRecovery sets what the plugin does after a 463. Recovery{} only
// diagnoses. Nothing is done under a reach-out timelock.
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

// Timelock returns what is known of the account's reach-out timelock.
func (p *Plugin) Timelock() TimelockState { return p.core.Timelock() }

// BackfillSalt re-reads the NCT salt from app state now if none is known
// and the last attempt is older than the interval. The plugin does this on
// every connect by itself; it returns "found", "absent", "failed" or
// "not_due".
func (p *Plugin) BackfillSalt(ctx context.Context) string {
	return p.core.BackfillSalt(ctx, "bridge").String()
}
