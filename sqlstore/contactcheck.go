package sqlstore

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"go.mau.fi/whatsmeow/types"
)

// ErrUnstorableContact is the error for a contact whose JID no key column
// can hold on PostgreSQL: TEXT there refuses a NUL byte and bytes that are
// not UTF-8, and one such row fails the whole statement it is in. A JID
// from a history blob or a notification can carry either (whatsmeow parses
// proto2 strings and binary-node strings without checking them). SQLite
// would store it, so the writers refuse it on both, before any statement:
// the same input then gives the same result on either database.
var ErrUnstorableContact = errors.New("tctoken: contact JID cannot be stored")

// CheckContact reports why contact cannot be a key of the plugin's tables
// (or of whatsmeow's), or nil. The error quotes the JID with its bad bytes
// escaped; a JID is no secret.
func CheckContact(contact types.JID) error {
	// The key joins user and server with an ASCII '@', so it holds a NUL or
	// breaks UTF-8 exactly when one of the two does; checking them apart
	// spares building the key for every good contact.
	switch {
	case strings.IndexByte(contact.User, 0) >= 0 || strings.IndexByte(contact.Server, 0) >= 0:
		return fmt.Errorf("%w: %q holds a NUL byte", ErrUnstorableContact, contactKey(contact))
	case !utf8.ValidString(contact.User) || !utf8.ValidString(contact.Server):
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrUnstorableContact, contactKey(contact))
	}
	return nil
}
