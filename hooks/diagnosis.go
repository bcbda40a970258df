package hooks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
)

// errorCodeNoToken is the server's ack error for a 1:1 message it refused
// for want of a valid token, or because the account is restricted.
const errorCodeNoToken = 463

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
	// DiagnosisNewChatCap: the account has used up its new chats for the
	// cycle (the new-chat cap is CAPPED). Only the guard gives it: what
	// the server answers a capped first contact with is not known.
	DiagnosisNewChatCap
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
	DiagnosisNewChatCap:   "new_chat_cap",
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
	case DiagnosisNewChatCap:
		return "the account has started as many new chats as its cycle allows: contacts who messaged us still get through; first contacts wait for the cycle's end"
	}
	return "no explanation known"
}

// classify says what a 463 means, given what was attached and the timelock
// in force. A timelock wins over everything: no token helps under one.
func classify(decision Decision, timelock TimelockState, now time.Time) Diagnosis {
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

// is463 reports whether err is whatsmeow's ack error 463. whatsmeow has no
// typed code: it wraps ErrServerReturnedError with the number in the text.
func is463(err error) bool {
	return errors.Is(err, whatsmeow.ErrServerReturnedError) &&
		strings.HasSuffix(err.Error(), fmt.Sprintf("%s %d", whatsmeow.ErrServerReturnedError, errorCodeNoToken))
}

// refusal is a send the server refused with 463, as diagnosed, and the key
// the contact's row lives under.
type refusal struct {
	SendError
	key types.JID
}

// diagnose463 diagnoses a send refused with 463: the pattern that infers a
// timelock hears of it, and the diagnosis says what the send lacked.
func (c *Core) diagnose463(ctx context.Context, to types.JID, id types.MessageID, sent sendState, err error) *refusal {
	key, _, _ := c.resolve(ctx, to)
	if acc := c.account.Load(); acc != nil {
		c.notePatternRefusal(ctx, acc, key, sent.decision)
	}
	timelock := c.Timelock()
	diagnosis := classify(sent.decision, timelock, c.now())
	c.metrics.refused(diagnosis)
	return &refusal{key: key, SendError: SendError{Contact: to, MessageID: id, Diagnosis: diagnosis,
		Attached: sent.decision.Attach, Cause: sent.decision.Cause, Timelock: timelock, Err: err}}
}

// report463 logs a refused send, tells the bridge through SendDiagnosed
// (a copy of the SendError), and returns the SendError, or nil when a
// resend got through. resendErr is the resend's error, if one went out.
func (c *Core) report463(r *refusal, resendErr error) error {
	report := r.Recovery
	c.log.Warn().Stringer("to", r.Contact).Str("message_id", r.MessageID).Stringer("diagnosis", r.Diagnosis).
		Stringer("attached", r.Attached).Stringer("cause", r.Cause).
		Bool("timelock", r.Timelock.InForce(c.now())).Time("timelock_ends", r.Timelock.Ends).
		Bool("reissued", report.Reissued).Bool("resent", report.Resent).
		Msg("Message refused with 463")
	if report.Resent && resendErr != nil && !is463(resendErr) {
		r.Err = resendErr
	}
	event := r.SendError
	c.dispatch(&SendDiagnosed{SendError: &event})
	if report.ResendAccepted {
		return nil
	}
	return &r.SendError
}
