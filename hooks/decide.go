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

// Decision is what to attach to one send, and why.
type Decision struct {
	Attach Attach
	Token  []byte // the tctoken or cstoken bytes; nil for AttachNothing
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
		return Decision{Reason: "peer message"}
	}
	if why := Ineligible(in.To, in.Own); why != "" {
		return Decision{Reason: "recipient is " + why}
	}
	hasToken := len(in.Token) > 0
	if hasToken && in.Policy.Timing.ReceivedTokenValid(in.TokenTS, in.Now) {
		if in.Policy.AttachTCToken {
			return Decision{Attach: AttachTCToken, Token: in.Token, Reason: "valid tctoken stored"}
		}
		// The gate is off for tctokens: fall through to the cstoken, as a
		// client without the token would.
	}
	if !in.Policy.AttachCSToken {
		return Decision{Reason: noTokenReason(hasToken, in) + "; cstoken disabled by AB prop"}
	}
	if len(in.Salt) == 0 {
		return Decision{Reason: noTokenReason(hasToken, in) + "; no NCT salt known"}
	}
	if in.LID.IsEmpty() {
		return Decision{Reason: noTokenReason(hasToken, in) + "; recipient's LID unknown, no cstoken (Plugin.SendMessage looks it up)"}
	}
	cstoken := in.CSToken
	if cstoken == nil {
		cstoken = CSToken(in.Salt, in.LID.ToNonAD())
	}
	return Decision{Attach: AttachCSToken, Token: cstoken, Reason: noTokenReason(hasToken, in) + "; cstoken over LID"}
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
