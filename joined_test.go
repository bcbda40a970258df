package tctoken_test

import (
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/wamock"
)

// whatsmeowToken reads whatsmeow's own row for a contact straight from its
// table: what whatsmeow alone would find.
func (w *world) whatsmeowToken(contact types.JID) string {
	w.t.Helper()
	var token []byte
	err := w.db.QueryRow(w.ctx, `SELECT token FROM whatsmeow_privacy_tokens WHERE our_jid=$1 AND their_jid=$2`,
		w.device.ID.String(), contact.ToNonAD().String()).Scan(&token)
	if err != nil {
		return ""
	}
	return string(token)
}

// refuseWhatsmeowWrites makes whatsmeow's token table refuse every
// statement of one kind (INSERT or UPDATE), until the returned function
// lifts it.
func refuseWhatsmeowWrites(t *testing.T, w *world, kind string) (lift func()) {
	t.Helper()
	install, remove := []string{
		`CREATE TRIGGER refuse_whatsmeow BEFORE ` + kind + ` ON whatsmeow_privacy_tokens BEGIN SELECT RAISE(ABORT, 'refused'); END`,
	}, []string{`DROP TRIGGER refuse_whatsmeow`}
	if w.db.Dialect == dbutil.Postgres {
		install = []string{
			`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$`,
			`CREATE TRIGGER refuse_whatsmeow BEFORE ` + kind + ` ON whatsmeow_privacy_tokens FOR EACH ROW EXECUTE FUNCTION refuse()`,
		}
		remove = []string{`DROP TRIGGER refuse_whatsmeow ON whatsmeow_privacy_tokens`}
	}
	run := func(queries []string) {
		for _, query := range queries {
			if _, err := w.db.Exec(w.ctx, query); err != nil {
				t.Fatal(err)
			}
		}
	}
	run(install)
	return func() { run(remove) }
}

// whatsmeow's store on the plugin's database, as bridges build it, joins
// the plugin's transactions: a token lands in both tables in one commit.
// When whatsmeow's table refuses the write, the joined transaction rolls
// back and the plugin's write still commits on its own, with one warning:
// sends carry the token, and whatsmeow's table catches up with the next
// token once it accepts writes again.
func TestJoinedWriteThrough(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		w.srv.SetMessageRule(wamock.RequireToken())
		alice := w.srv.AddContact(wamock.ContactOptions{})
		bob := w.srv.AddContact(wamock.ContactOptions{})

		w.receiveToken(alice.LID(), "alice-token")
		if got := w.whatsmeowToken(alice.LID()); got != "alice-token" {
			t.Fatalf("whatsmeow's row for alice: %q, want alice-token", got)
		}
		// By the first write at the latest the plugin knows that whatsmeow's
		// store joins its transactions.
		w.waitLog(1, "Asked whether whatsmeow's token store joins the plugin's transactions", `"joins":true`)

		lift := refuseWhatsmeowWrites(t, w, "INSERT")
		w.receiveToken(bob.LID(), "bob-token")
		w.receiveToken(alice.LID(), "alice-second")
		if got := childBytes(w.rawSend(bob.LID()), "tctoken"); string(got) != "bob-token" {
			t.Fatalf("while whatsmeow's table refuses writes: tctoken %q, want bob-token", got)
		}
		if n := w.logLines(`"level":"warn"`, "Failed to copy privacy tokens to whatsmeow's own store"); n != 1 {
			t.Fatalf("the refused write-through was logged at warn level %d times, want once", n)
		}
		if got := w.whatsmeowToken(bob.LID()); got != "" {
			t.Fatalf("whatsmeow's table took %q while refusing writes", got)
		}

		lift()
		w.clock.Advance(time.Minute)
		w.receiveToken(bob.LID(), "bob-later")
		if got := w.whatsmeowToken(bob.LID()); got != "bob-later" {
			t.Fatalf("whatsmeow's row for bob after the refusal: %q, want bob-later", got)
		}
	})
}
