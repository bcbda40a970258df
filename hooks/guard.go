package hooks

import (
	"fmt"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
)

// guardable reports whether the guard looks at a send: a 1:1 message that
// carries no valid tctoken of the contact (a cstoken or nothing), which
// the server counts as reaching out to someone new. A message with a
// valid tctoken, one whose caller attached its own token, one that goes
// to our own devices or to a group, and one with a valid tctoken that the
// AB props keep off the message go as always.
func guardable(decision Decision, req whatsmeow.SendRequestExtra) bool {
	switch decision.Cause {
	case CauseCSTokenNoTCToken, CauseCSTokenExpired, CauseCSTokenOff, CauseNoSalt, CauseNoLID:
		return !callerAttachedToken(req.AdditionalNodes)
	}
	return false
}

// guard is the one place that decides, before anything goes on the wire,
// whether the policy refuses a send: a first contact while the server said
// that a restriction of the account is in force. It returns the error to give
// the caller, or nil when the send may go. Each restriction is one case
// below, with the diagnosis that names it: the reach-out timelock, then the
// new-chat cap, which WhatsApp Web also enforces only on first contacts and
// only while the AB props enable it.
func (c *Core) guard(to types.JID, decision Decision, req whatsmeow.SendRequestExtra) *SendError {
	if !c.recovery.GuardFirstContacts || req.Peer || !guardable(decision, req) {
		return nil
	}
	now := c.now()
	timelock := c.Timelock()
	newChatCap := c.NewChatCap()
	var diagnosis Diagnosis
	switch {
	case timelock.InForce(now) && timelock.Source != TimelockFromPattern:
		// The server's word only: the pattern's lock has no end and is
		// lifted when a first contact gets through, which the guard would
		// never let happen.
		diagnosis = DiagnosisTimelock
	case newChatCap.InForce(now) && c.Policy().NewChatCap.Enabled:
		// A CAPPED state stays stored when the props later turn the cap
		// off; the server no longer counts new chats then.
		diagnosis = DiagnosisNewChatCap
	default:
		return nil
	}
	ev := c.log.Warn().Stringer("to", to).Stringer("diagnosis", diagnosis).Stringer("cause", decision.Cause)
	switch diagnosis {
	case DiagnosisTimelock:
		ev = ev.Str("timelock_source", timelock.Source).Time("timelock_ends", timelock.Ends)
	case DiagnosisNewChatCap:
		ev = ev.Str("cap_status", string(newChatCap.Status)).Time("cap_cycle_end", newChatCap.CycleEnd)
	}
	ev.Msg("Refused a first contact before sending it, as the policy asks (Recovery.GuardFirstContacts)")
	return &SendError{
		Contact: to, MessageID: req.ID, Diagnosis: diagnosis, Attached: decision.Attach, Cause: decision.Cause,
		Timelock: timelock, NewChatCap: newChatCap, Guarded: true, Recovery: RecoveryReport{Skipped: "guarded"},
		Err: fmt.Errorf("%w: %s", ErrFirstContactGuarded, diagnosis),
	}
}
