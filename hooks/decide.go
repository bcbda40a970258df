package hooks

import (
	"context"

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

// decisionInput is everything decideFrom needs. It is gathered by the caller so
// that decideFrom does no I/O.
type decisionInput struct {
	To   types.JID // the recipient as the caller gave it
	Peer bool      // a message to our own devices
	Own  ownJIDs
	// LID is the recipient's LID when known (To itself when it is a LID).
	LID types.JID
	// Token and TokenTS are the stored token the contact issued to us, if any.
	Token   []byte
	TokenTS int64
	Salt    []byte
	// CSToken, when set, is CSToken(Salt, LID) computed earlier (cached);
	// decideFrom computes it otherwise.
	CSToken []byte
	Policy  Policy
	Now     int64
}

// Decide gathers what the decision needs (cache, salt, policy) and returns
// what to attach for a send to `to` now. No I/O once the contact is cached.
// Any failure degrades to the best decision possible without it.
//
// It is on every send's path: the recipient is judged eligible once, the
// clock is read only for a stored token, and the cstoken is looked up only
// when it is the decision.
func (c *Core) Decide(ctx context.Context, to types.JID, peer bool) (Decision, types.JID, types.JID) {
	in := decisionInput{To: to, Peer: peer, Own: c.own()}
	var why string
	if !peer {
		why = ineligible(to, in.Own)
	}
	if peer || why != "" {
		return decideJudged(&in, why), types.EmptyJID, types.EmptyJID
	}
	v, err := c.view(ctx, to)
	if err != nil {
		// Decide with what is known without the database: the LID and the
		// salt still give a cstoken.
		_, lid, pn := c.resolve(ctx, to)
		in.LID, in.Salt, in.Policy = lid, c.Salt(), c.Policy()
		decision := decideJudged(&in, "")
		if decision.Attach == AttachCSToken {
			decision.Token = csToken(in.Salt, lid)
		}
		return decision, lid, pn
	}
	salt := v.acc.salt.Load()
	if salt != nil {
		in.Salt = *salt
	}
	in.LID, in.Policy = v.lid, *v.acc.policy.Load()
	if in.Token = v.entry.token; len(in.Token) > 0 {
		in.TokenTS, in.Now = v.entry.tokenTS, c.nowUnix()
	}
	decision := decideJudged(&in, "")
	if decision.Attach == AttachCSToken {
		decision.Token = c.cachedCSToken(salt, v.lid)
	}
	return decision, v.lid, v.pn
}

// decideFrom applies the fallback chain: a valid tctoken, else a cstoken over the
// LID, else nothing. Never both.
func decideFrom(in decisionInput) Decision {
	var why string
	if !in.Peer {
		why = ineligible(in.To, in.Own)
	}
	decision := decideJudged(&in, why)
	if decision.Attach == AttachCSToken && decision.Token == nil {
		decision.Token = csToken(in.Salt, in.LID.ToNonAD())
	}
	return decision
}

// decideJudged is decideFrom with the recipient's eligibility already judged (why is
// what Ineligible said of in.To), so that a send judges it once. A cstoken
// decision carries in.CSToken, nil when the caller has not computed it: the
// caller then computes it (or takes it from its cache), which it does only
// when the decision is a cstoken. in.Now is read only when in.Token is set.
func decideJudged(in *decisionInput, why string) Decision {
	if in.Peer {
		return Decision{Cause: CausePeerMessage, Reason: "peer message"}
	}
	if why != "" {
		return Decision{Cause: CauseIneligible, Reason: "recipient is " + why}
	}
	state := tokenNone
	if len(in.Token) > 0 {
		if !in.Policy.Timing.ReceivedTokenValid(in.TokenTS, in.Now) {
			state = tokenExpired
		} else if in.Policy.AttachTCToken {
			return Decision{Attach: AttachTCToken, Token: in.Token, Cause: CauseValidTCToken, Reason: "valid tctoken stored"}
		} else {
			// The gate is off for tctokens: fall through to the cstoken, as
			// a client without the token would.
			state = tokenGateOff
		}
	}
	switch {
	case !in.Policy.AttachCSToken:
		return Decision{Cause: CauseCSTokenOff, Reason: reasons[state][outcomeCSTokenOff]}
	case len(in.Salt) == 0:
		return Decision{Cause: CauseNoSalt, Reason: reasons[state][outcomeNoSalt]}
	case in.LID.IsEmpty():
		return Decision{Cause: CauseNoLID, Reason: reasons[state][outcomeNoLID]}
	}
	return Decision{Attach: AttachCSToken, Token: in.CSToken, Cause: csTokenCauses[state], Reason: reasons[state][outcomeCSToken]}
}

// tokenState is why no tctoken goes on a message.
type tokenState uint8

const (
	tokenNone    tokenState = iota // no tctoken stored
	tokenExpired                   // the stored tctoken expired
	tokenGateOff                   // AB props turned tctokens off
)

// What goes instead of a tctoken.
const (
	outcomeCSTokenOff = iota
	outcomeNoSalt
	outcomeNoLID
	outcomeCSToken
)

// csTokenCauses says why a cstoken stands in, as reasons does in words.
var csTokenCauses = [...]Cause{
	tokenNone:    CauseCSTokenNoTCToken,
	tokenExpired: CauseCSTokenExpired,
	tokenGateOff: CauseCSTokenTCTokenOff,
}

// reasons are the Reason strings of the decisions without a tctoken, built
// once: a send never concatenates them.
var reasons = func() (out [3][4]string) {
	noToken := [...]string{
		tokenNone:    "no tctoken stored",
		tokenExpired: "tctoken expired",
		tokenGateOff: "tctoken disabled by AB prop",
	}
	outcome := [...]string{
		outcomeCSTokenOff: "; cstoken disabled by AB prop",
		outcomeNoSalt:     "; no NCT salt known",
		outcomeNoLID:      "; recipient's LID unknown, no cstoken (Plugin.SendMessage looks it up)",
		outcomeCSToken:    "; cstoken over LID",
	}
	for state, prefix := range noToken {
		for kind, suffix := range outcome {
			out[state][kind] = prefix + suffix
		}
	}
	return out
}()
