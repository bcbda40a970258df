package hooks

import (
	"crypto/sha256"
	"encoding/hex"
)

// ShortHash is how token bytes and the salt appear in logs: the first four
// bytes of their SHA-256, enough to tell two apart and useless to an attacker.
func ShortHash(secret []byte) string {
	if len(secret) == 0 {
		return "none"
	}
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:4])
}
