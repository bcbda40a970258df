package hooks

import (
	"errors"
	"fmt"
)

// ErrDatabase marks a failure of the plugin's database (or of whatsmeow's,
// where the plugin reads it) in an error a public call returns, beside the
// driver's error, so that a caller can tell an outage from a refusal.
var ErrDatabase = errors.New("database error")

// ErrFirstContactGuarded marks a send that the guard refused before it
// went on the wire (Recovery.GuardFirstContacts): a first contact while
// the server said that a restriction of the account is in force.
var ErrFirstContactGuarded = errors.New("first contact refused before sending under a known restriction")

// writeErr marks the error of a write to the account's store as the
// database's, unless it is the logout fence's refusal (ErrLoggedOut): the
// account went away under the write, and the database is fine.
func writeErr(err error) error {
	if errors.Is(err, ErrLoggedOut) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrDatabase, err)
}
