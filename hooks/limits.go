package hooks

import (
	"errors"
	"fmt"

	"github.com/tctoken/tctoken/sqlstore"
)

// maxSaltSize bounds the NCT salt. A real one is a few dozen bytes; a huge
// one would be copied into every cstoken computation and the database.
const maxSaltSize = 256

// errSaltTooLarge means a salt over MaxSaltSize was refused.
var errSaltTooLarge = errors.New("NCT salt too large")

// checkSaltSize refuses an oversized salt, naming the source and the size,
// never the bytes. A nil salt (a removal) passes.
func checkSaltSize(source sqlstore.SaltSource, salt []byte) error {
	if len(salt) > maxSaltSize {
		return fmt.Errorf("%w: the salt from %s is %d bytes, over the %d-byte limit", errSaltTooLarge, source, len(salt), maxSaltSize)
	}
	return nil
}
