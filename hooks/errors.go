package hooks

import "errors"

// ErrDatabase marks a failure of the plugin's database (or of whatsmeow's,
// where the plugin reads it) in an error a public call returns, beside the
// driver's error, so that a caller can tell an outage from a refusal.
var ErrDatabase = errors.New("database error")
