package hooks

import (
	"context"
	"fmt"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.mau.fi/whatsmeow/types"
)

// recoveryState is what a 463 sets off, and what it already did.
type recoveryState struct {
	recovery Recovery
	// reissued remembers (contact, sender bucket) pairs a 463 reissued to.
	reissued *lru.Cache[reissueKey, struct{}]
}

// Recovery is what the plugin does about refused 1:1 sends: after a 463,
// and (GuardFirstContacts) before a send the server is known to refuse.
// Every step is bounded, and none runs under a reach-out timelock: blind
// retries and reissues there are what makes a timelock longer.
type Recovery struct {
	// Reissue our token to the contact, at most once per contact and
	// sender bucket. A whatsmeow that issues after every DM by itself
	// (the newer one, even after a 463) has done it already.
	Reissue bool
	// SubscribePresence to the contact: the server answers a subscription
	// by prompting the contact's client, which may issue us a token.
	SubscribePresence bool
	// BackfillSalt re-reads the NCT salt when the diagnosis is no_salt,
	// within the backfill's own rate limit.
	BackfillSalt bool
	// Resend the message once, with the same message ID, if within
	// ResendWait what the send lacked becomes known: a token from the
	// contact, the salt, the contact's LID. Never more than once.
	Resend bool
	// ResendWait bounds how long SendMessage waits for such a change
	// before returning the error; zero means DefaultResendWait.
	ResendWait time.Duration
	// GuardFirstContacts refuses, before anything goes on the wire, a send
	// to a contact we hold no valid tctoken from while the server said
	// that a reach-out timelock is in force (its answer to the timelock
	// query, or its notification; not the pattern, whose lock only a first
	// contact that gets through lifts), or that the new-chat cap is CAPPED
	// while the AB props enable it. SendMessage returns a *SendError with
	// Guarded set, which matches ErrFirstContactGuarded. Off by default:
	// the send goes, and a 463 is diagnosed.
	GuardFirstContacts bool
}

// defaultResendWait is how long a resend waits for a change by default.
const defaultResendWait = 10 * time.Second

// DefaultRecovery is the conservative default: diagnose, then reissue.
func DefaultRecovery() Recovery { return Recovery{Reissue: true} }

// RecoveryReport says what the plugin did after one 463.
type RecoveryReport struct {
	// Skipped says why nothing was done ("timelock", or "guarded" for a
	// send the guard kept off the wire), "" otherwise.
	Skipped string `json:"skipped,omitempty"`
	// Reissued: our token was issued to the contact again.
	Reissued bool `json:"reissued"`
	// ReissueSkipped says why a reissue the policy asked for did not go.
	ReissueSkipped string `json:"reissue_skipped,omitempty"`
	Subscribed     bool   `json:"subscribed"`
	BackfillTried  bool   `json:"backfill_tried"`
	// Resent: the message went once more, with the same ID; ResendAccepted
	// says whether the server took it.
	Resent         bool `json:"resent"`
	ResendAccepted bool `json:"resend_accepted"`
}

type reissueKey struct {
	contact types.JID
	bucket  int64
}

// SendError is the error Plugin.SendMessage returns for a 1:1 message the
// server refused with 463. It wraps whatsmeow's error, so errors.Is with
// whatsmeow.ErrServerReturnedError still holds. It is also the error for a
// send the guard refused before the wire (Guarded).
type SendError struct {
	// Contact is the recipient as the caller gave it; MessageID the
	// message's ID.
	Contact   types.JID
	MessageID types.MessageID
	Diagnosis Diagnosis
	// Attached and Cause are what the plugin attached and why.
	Attached Attach
	Cause    Cause
	Timelock TimelockState
	// NewChatCap is the new-chat cap the guard saw, when it refused the
	// send for it (DiagnosisNewChatCap).
	NewChatCap NewChatCapState
	Recovery   RecoveryReport
	// Guarded: the guard refused the send before it went on the wire
	// (Recovery.GuardFirstContacts); the server saw nothing, MessageID is
	// the caller's or empty, and Err matches ErrFirstContactGuarded.
	Guarded bool
	Err     error
}

func (e *SendError) Error() string {
	var msg string
	if e.Guarded {
		msg = fmt.Sprintf("tctoken: first contact to %s not sent: %s (would attach %s, %s)", e.Contact, e.Diagnosis, e.Attached, e.Cause)
	} else {
		msg = fmt.Sprintf("tctoken: message %s to %s refused with 463: %s (attached %s, %s)", e.MessageID, e.Contact, e.Diagnosis, e.Attached, e.Cause)
	}
	// Only the guard gives the new-chat cap as the diagnosis.
	switch {
	case e.Diagnosis == DiagnosisTimelock && !e.Timelock.Ends.IsZero():
		msg += fmt.Sprintf(", timelock ends %s", e.Timelock.Ends.UTC().Format(time.RFC3339))
	case e.Diagnosis == DiagnosisNewChatCap && !e.NewChatCap.CycleEnd.IsZero():
		msg += fmt.Sprintf(", new-chat cap cycle ends %s", e.NewChatCap.CycleEnd.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("%s: %v", msg, e.Err)
}

func (e *SendError) Unwrap() error { return e.Err }

// SendDiagnosed is dispatched through whatsmeow's event handlers for every
// 1:1 send through Plugin.SendMessage that the server refused with 463: a
// copy of the SendError returned (also when a resend got through, which
// returns no error; its Recovery says so).
type SendDiagnosed struct {
	*SendError
}

// recover runs the steps of the policy that apply to the diagnosis. Under
// a timelock none does: nothing the plugin can do lifts it.
func (c *Core) recover(ctx context.Context, to, key types.JID, diagnosis Diagnosis) RecoveryReport {
	var report RecoveryReport
	if diagnosis == DiagnosisTimelock {
		report.Skipped = "timelock"
		return report
	}
	if c.recovery.Reissue {
		report.Reissued, report.ReissueSkipped = c.reissueAfter463(ctx, to, key)
	}
	if c.recovery.SubscribePresence {
		if err := c.SubscribePresence(ctx, to); err != nil {
			c.log.Warn().Err(err).Stringer("contact", to).Msg("Failed to subscribe to presence after a 463")
		} else {
			report.Subscribed = true
		}
	}
	if c.recovery.BackfillSalt && diagnosis == DiagnosisNoSalt {
		report.BackfillTried = c.BackfillSalt(ctx, "463") != BackfillNotDue
	}
	return report
}

// reissueAfter463 issues our token to the contact once per sender bucket.
func (c *Core) reissueAfter463(ctx context.Context, to, key types.JID) (bool, string) {
	if c.compat.Native() {
		// whatsmeow issued after the DM by itself, 463 or not.
		return false, "whatsmeow issues by itself"
	}
	now := c.nowUnix()
	bucket := Bucket(now, c.Policy().Timing.SenderDuration)
	if _, done := c.reissued.Get(reissueKey{key, bucket}); done {
		return false, "already reissued in this bucket"
	}
	c.reissued.Add(reissueKey{key, bucket}, struct{}{})
	err := c.issueOne(ctx, to, "463", func(_ Timing, _, now int64) (int64, bool) { return now, true })
	if err != nil {
		c.log.Warn().Err(err).Stringer("contact", to).Msg("Failed to reissue our token after a 463")
		return false, "failed"
	}
	return true, ""
}

// resendDue reports whether the refused send to `to` is to go out once
// more: the policy resends, the recovery ran, and what the send lacked
// became known within ResendWait.
func (c *Core) resendDue(ctx context.Context, to types.JID, sent sendState, report RecoveryReport) bool {
	return c.recovery.Resend && report.Skipped == "" && c.waitForChange(ctx, to, sent)
}

// resendPoll is how often a waiting resend looks for a change. The change
// comes from another goroutine (a notification, a sync), and polling the
// cached decision is cheaper than wiring a signal through every writer.
const resendPoll = 50 * time.Millisecond

// waitForChange waits up to ResendWait for the decision for `to` to differ
// from the one sent: a token arrived, the salt or the LID became known.
func (c *Core) waitForChange(ctx context.Context, to types.JID, sent sendState) bool {
	wait := c.recovery.ResendWait
	if wait <= 0 {
		wait = defaultResendWait
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(resendPoll)
	defer tick.Stop()
	for {
		if c.sendStateOf(ctx, to).improvesOn(sent) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-c.stop:
			return false
		case <-deadline.C:
			return false
		case <-tick.C:
		}
	}
}

// sendState is what a send went out with: the decision, and whether the
// salt and the LID were known.
type sendState struct {
	decision Decision
	salt     bool
	lid      bool
}

func (c *Core) sendStateOf(ctx context.Context, to types.JID) sendState {
	decision, lid, _ := c.Decide(ctx, to, false)
	return sendState{decision: decision, salt: len(c.Salt()) > 0, lid: !lid.IsEmpty()}
}

// improvesOn: something the refused send lacked is now known.
func (s sendState) improvesOn(sent sendState) bool {
	switch {
	case s.decision.Attach == AttachTCToken && (sent.decision.Attach != AttachTCToken || string(s.decision.Token) != string(sent.decision.Token)):
		return true
	case s.salt && !sent.salt, s.lid && !sent.lid:
		return true
	}
	return false
}
