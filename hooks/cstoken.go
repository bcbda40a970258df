package hooks

import (
	"crypto/hmac"
	"crypto/sha256"

	"go.mau.fi/whatsmeow/types"
)

// CSTokenSize is the length of a cstoken: one HMAC-SHA256 output.
const CSTokenSize = sha256.Size

// CSToken computes the first-contact fallback token: HMAC-SHA256 keyed with
// the NCT salt over "<lid user>@lid". It returns nil unless lid is a LID and
// the salt is non-empty, because the server only accepts it over the LID.
func CSToken(salt []byte, lid types.JID) []byte {
	if len(salt) == 0 || lid.Server != types.HiddenUserServer || lid.User == "" {
		return nil
	}
	mac := hmac.New(sha256.New, salt)
	mac.Write([]byte(lid.User))
	mac.Write([]byte("@" + types.HiddenUserServer))
	return mac.Sum(nil)
}
