package hooks

import (
	"crypto/hmac"
	"crypto/sha256"

	"go.mau.fi/whatsmeow/types"
)

// csToken computes the first-contact fallback token: HMAC-SHA256 keyed with
// the NCT salt over "<lid user>@lid". It returns nil unless lid is a LID and
// the salt is non-empty, because the server only accepts it over the LID.
func csToken(salt []byte, lid types.JID) []byte {
	if len(salt) == 0 || lid.Server != types.HiddenUserServer || lid.User == "" {
		return nil
	}
	mac := hmac.New(sha256.New, salt)
	mac.Write([]byte(lid.User))
	mac.Write([]byte("@" + types.HiddenUserServer))
	return mac.Sum(nil)
}

// cachedCSToken returns the cstoken over lid under salt (the salt in
// force), from a bounded cache: the HMAC is most of what a first-contact
// send costs. Entries remember the salt they were computed with, so a salt
// change needs no purge that a concurrent computation could undo.
func (c *Core) cachedCSToken(salt *[]byte, lid types.JID) []byte {
	if salt == nil || lid.IsEmpty() {
		return nil
	}
	if cached, ok := c.cstokens.Get(lid); ok && cached.salt == salt {
		return cached.token
	}
	token := csToken(*salt, lid)
	c.cstokens.Add(lid, cstokenEntry{salt: salt, token: token})
	return token
}
