package tctoken

import "github.com/tctoken/tctoken/hooks"

// IssueBatchSize is how many contacts one privacy IQ issues our token to at
// most; issuance triggered by sends and receipts is queued and batched.
const IssueBatchSize = hooks.IssueBatchSize

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
