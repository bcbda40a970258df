package tctoken

import "github.com/tctoken/tctoken/hooks"

// Cause is why a Decision attaches what it does, machine-readable beside
// its Reason text.
type Cause = hooks.Cause

// The causes of a Decision.
const (
	CauseUnknown           = hooks.CauseUnknown
	CausePeerMessage       = hooks.CausePeerMessage
	CauseIneligible        = hooks.CauseIneligible
	CauseCallerToken       = hooks.CauseCallerToken
	CauseValidTCToken      = hooks.CauseValidTCToken
	CauseCSTokenNoTCToken  = hooks.CauseCSTokenNoTCToken
	CauseCSTokenExpired    = hooks.CauseCSTokenExpired
	CauseCSTokenTCTokenOff = hooks.CauseCSTokenTCTokenOff
	CauseCSTokenOff        = hooks.CauseCSTokenOff
	CauseNoSalt            = hooks.CauseNoSalt
	CauseNoLID             = hooks.CauseNoLID
)

// Attach is what a Decision puts on a message: nothing, a tctoken or a
// cstoken.
type Attach = hooks.Attach
