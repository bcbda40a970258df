package tctoken

import "github.com/tctoken/tctoken/hooks"

// IssueBatchSize is how many contacts one privacy IQ issues our token to at
// most; issuance triggered by sends and receipts is queued and batched.
const IssueBatchSize = hooks.IssueBatchSize
