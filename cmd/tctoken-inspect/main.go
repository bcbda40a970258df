// Command tctoken-inspect shows what the tctoken plugin holds in a bridge's
// database, without the bridge and without writing to it:
//
//	tctoken-inspect /path/to/bridge.db                 every account
//	tctoken-inspect postgres://user@host/db            the same on PostgreSQL
//	tctoken-inspect --jid +15551234567 <database>      one contact, explained
//	tctoken-inspect --json <database>                  the same as JSON
//
// Per account it shows the contacts with their token timestamp, expiry,
// sender timestamp and whether an issuance is due; the NCT salt, present or
// absent, with its source (never its bytes: a short hash); the AB props in
// force and when they were fetched; the import of whatsmeow's own tokens;
// the reach-out timelock; the new-chat cap. --jid explains one contact with
// the same code as Plugin.Explain: what the next message would carry, why,
// and what a 463 would mean.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
