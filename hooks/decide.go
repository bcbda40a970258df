package hooks

import (
	"go.mau.fi/whatsmeow/types"
)

// Attach is what goes on an outgoing 1:1 message.
type Attach uint8

const (
	AttachNothing Attach = iota
	AttachTCToken
	AttachCSToken
)

func (a Attach) String() string {
	switch a {
	case AttachTCToken:
		return "tctoken"
	case AttachCSToken:
		return "cstoken"
	}
	return "nothing"
}

// Cause is why a Decision attaches what it does, for programs: Reason says
// the same for people, with detail (which kind of ineligible recipient).
type Cause uint8

const (
	CauseUnknown Cause = iota
	// CausePeerMessage: a message to our own devices carries no token.
	CausePeerMessage
	// CauseIneligible: a group, broadcast, newsletter, bot, the PSA account
	// or our own account; Reason names which.
	CauseIneligible
	// CauseCallerToken: the caller put its own <tctoken> or <cstoken> in
	// AdditionalNodes; the plugin adds nothing.
	CauseCallerToken
	// CauseValidTCToken: a valid tctoken is stored and attached.
	CauseValidTCToken
	// CauseCSTokenNoTCToken: a cstoken, because no tctoken is stored.
	CauseCSTokenNoTCToken
	// CauseCSTokenExpired: a cstoken, because the stored tctoken expired.
	CauseCSTokenExpired
	// CauseCSTokenTCTokenOff: a cstoken, because AB props turned tctokens off.
	CauseCSTokenTCTokenOff
	// CauseCSTokenOff: nothing, because AB props turned cstokens off.
	CauseCSTokenOff
	// CauseNoSalt: nothing, because the NCT salt is not known.
	CauseNoSalt
	// CauseNoLID: nothing, because the recipient's LID is not known.
	CauseNoLID
)

var causeNames = [...]string{
	CauseUnknown:           "unknown",
	CausePeerMessage:       "peer_message",
	CauseIneligible:        "ineligible_recipient",
	CauseCallerToken:       "caller_token",
	CauseValidTCToken:      "valid_tctoken",
	CauseCSTokenNoTCToken:  "cstoken_no_tctoken",
	CauseCSTokenExpired:    "cstoken_tctoken_expired",
	CauseCSTokenTCTokenOff: "cstoken_tctoken_disabled",
	CauseCSTokenOff:        "cstoken_disabled",
	CauseNoSalt:            "no_salt",
	CauseNoLID:             "no_lid",
}

// String is the cause's stable snake_case name, for logs and metrics.
func (c Cause) String() string {
	if int(c) < len(causeNames) {
		return causeNames[c]
	}
	return "unknown"
}

// Decision is what to attach to one send, and why.
type Decision struct {
	Attach Attach
	Token  []byte // the tctoken or cstoken bytes; nil for AttachNothing
	Cause  Cause
	Reason string
}

// DecisionInput is everything Decide needs. It is gathered by the caller so
// that Decide does no I/O.
type DecisionInput struct {
	To   types.JID // the recipient as the caller gave it
	Peer bool      // a message to our own devices
	Own  Own
	// LID is the recipient's LID when known (To itself when it is a LID).
	LID types.JID
	// Token and TokenTS are the stored token the contact issued to us, if any.
	Token   []byte
	TokenTS int64
	Salt    []byte
	// CSToken, when set, is CSToken(Salt, LID) computed earlier (cached);
	// Decide computes it otherwise.
	CSToken []byte
	Policy  Policy
	Now     int64
}

// Decide applies the fallback chain: a valid tctoken, else a cstoken over the
// LID, else nothing. Never both.
func Decide(in DecisionInput) Decision {
	if in.Peer {
		return Decision{Cause: CausePeerMessage, Reason: "peer message"}
	}
	if why := Ineligible(in.To, in.Own); why != "" {
		return Decision{Cause: CauseIneligible, Reason: "recipient is " + why}
	}
	hasToken := len(in.Token) > 0
	if hasToken && in.Policy.Timing.ReceivedTokenValid(in.TokenTS, in.Now) {
		if in.Policy.AttachTCToken {
			return Decision{Attach: AttachTCToken, Token: in.Token, Cause: CauseValidTCToken, Reason: "valid tctoken stored"}
		}
		// The gate is off for tctokens: fall through to the cstoken, as a
		// client without the token would.
	}
	if !in.Policy.AttachCSToken {
		return Decision{Cause: CauseCSTokenOff, Reason: noTokenReason(hasToken, in) + "; cstoken disabled by AB prop"}
	}
	if len(in.Salt) == 0 {
		return Decision{Cause: CauseNoSalt, Reason: noTokenReason(hasToken, in) + "; no NCT salt known"}
	}
	if in.LID.IsEmpty() {
		return Decision{Cause: CauseNoLID, Reason: noTokenReason(hasToken, in) + "; recipient's LID unknown, no cstoken (Plugin.SendMessage looks it up)"}
	}
	cstoken := in.CSToken
	if cstoken == nil {
		cstoken = CSToken(in.Salt, in.LID.ToNonAD())
	}
	return Decision{Attach: AttachCSToken, Token: cstoken, Cause: csTokenCause(hasToken, in), Reason: noTokenReason(hasToken, in) + "; cstoken over LID"}
}

// csTokenCause says why a cstoken stands in, as noTokenReason does in words.
func csTokenCause(hasToken bool, in DecisionInput) Cause {
	switch {
	case !hasToken:
		return CauseCSTokenNoTCToken
	case !in.Policy.Timing.ReceivedTokenValid(in.TokenTS, in.Now):
		return CauseCSTokenExpired
	default:
		return CauseCSTokenTCTokenOff
	}
}

func noTokenReason(hasToken bool, in DecisionInput) string {
	switch {
	case !hasToken:
		return "no tctoken stored"
	case !in.Policy.Timing.ReceivedTokenValid(in.TokenTS, in.Now):
		return "tctoken expired"
	default:
		return "tctoken disabled by AB prop"
	}
}
