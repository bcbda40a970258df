package wamock

import (
	"crypto/rand"
	"encoding/hex"
	"strings"

	"go.mau.fi/whatsmeow/types"
)

// newMessageID is a message ID in the form WhatsApp Web used for years: 3EB0
// and 16 random hex digits. The fake's contacts and phone are not whatsmeow
// clients, so they have no Client.GenerateMessageID to ask.
func newMessageID() types.MessageID {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return types.MessageID("3EB0" + strings.ToUpper(hex.EncodeToString(b[:])))
}
