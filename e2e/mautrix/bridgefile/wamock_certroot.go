// This file is added to mautrix-whatsapp's cmd/mautrix-whatsapp by
// e2e/mautrix/run, in a temporary copy of the bridge. It is the only change the harness makes besides the plugin's
// lines: whatsmeow checks the server's Noise certificate against the package
// variable whatsmeow.WACertPubKey, which no configuration can change, so the
// bridge takes cmd/wamock's certificate root from WAMOCK_CERT_ROOT.

package main

import (
	"encoding/hex"
	"fmt"
	"os"

	"go.mau.fi/whatsmeow"
)

func init() {
	root := os.Getenv("WAMOCK_CERT_ROOT")
	if root == "" {
		return
	}
	key, err := hex.DecodeString(root)
	if err != nil || len(key) != len(whatsmeow.WACertPubKey) {
		fmt.Fprintf(os.Stderr, "WAMOCK_CERT_ROOT is not %d bytes of hex (err: %v)\n", len(whatsmeow.WACertPubKey), err)
		os.Exit(2)
	}
	whatsmeow.WACertPubKey = [32]byte(key)
}
