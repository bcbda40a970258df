package tctoken_test

import (
	"testing"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"
	"go.uber.org/goleak"

	"github.com/tctoken/tctoken/wamock"
)

// TestNothingOutlivesCloseAndDisconnect: after the plugin did its work
// (connect-time prune and props, sends, queued issuance, a receipt, a token)
// nothing it started survives Close plus Disconnect. Goroutines that exist
// before the client (the database's) and the fake server's own are not the
// plugin's.
func TestNothingOutlivesCloseAndDisconnect(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		srvFuncs := []goleak.Option{
			goleak.IgnoreAnyFunction("github.com/tctoken/tctoken/wamock.(*Server).serveHTTP"),
			goleak.IgnoreAnyFunction("github.com/tctoken/tctoken/wamock.(*conn).run"),
			goleak.IgnoreAnyFunction("net/http.(*Server).Serve"),
			goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
			goleak.IgnoreAnyFunction("testing.(*T).Run"),
			goleak.IgnoreAnyFunction("database/sql.(*DB).connectionOpener"),
		}
		before := goleak.IgnoreCurrent()
		w := newWorld(t, db).connect()
		alice := w.srv.AddContact(wamock.ContactOptions{})
		bob := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(alice.LID(), "alice-token")
		mark := w.srv.Mark()
		for _, to := range []types.JID{alice.LID(), bob.LID()} {
			if _, err := w.plugin.SendMessage(w.ctx, to, text("hi")); err != nil {
				t.Fatal(err)
			}
		}
		w.pushReceipt(bob.LID(), "3EB0LEAK")
		eventually(t, "issuance", func() bool { return len(w.privacyIQsFor(mark, bob.LID())) == 1 })
		w.stop(w.plugin, w.cli)
		opts := append([]goleak.Option{before}, srvFuncs...)
		goleak.VerifyNone(t, opts...)
	})
}
