package tctoken_test

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/store"
	"google.golang.org/protobuf/proto"

	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/wamock"
)

// heldInner is whatsmeow's own token store with a hook: once armed with a
// token, the write of that token waits, before it reaches the database,
// until the test releases it.
type heldInner struct {
	store.PrivacyTokenStore
	armed atomic.Pointer[heldInnerWrite]
}

type heldInnerWrite struct {
	token            []byte
	reached, release chan struct{}
}

func (h *heldInner) holdWriteOf(token string) *heldInnerWrite {
	held := &heldInnerWrite{token: []byte(token), reached: make(chan struct{}), release: make(chan struct{})}
	h.armed.Store(held)
	return held
}

func (h *heldInner) PutPrivacyTokens(ctx context.Context, tokens ...store.PrivacyToken) error {
	if held := h.armed.Load(); held != nil {
		for _, token := range tokens {
			if bytes.Equal(token.Token, held.token) && h.armed.CompareAndSwap(held, nil) {
				close(held.reached)
				<-held.release
				break
			}
		}
	}
	return h.PrivacyTokenStore.PutPrivacyTokens(ctx, tokens...)
}

// Two write-throughs for one contact, apart (whatsmeow's store on a pool
// of its own, as a bridge that hands the plugin another *sql.DB has it):
// an older token from a history blob is held on its way to whatsmeow's
// table while a newer one arrives by notification and goes all the way.
// When the older one lands last, whatsmeow 2025-12's upsert takes it; the
// plugin must then put the newer one back, so that whatsmeow alone (the
// plugin removed) still sends the newest token. whatsmeow 33cfac51 refuses
// the older write itself; the test holds there too.
func TestWriteThroughKeepsTheNewestToken(t *testing.T) {
	for _, dialect := range []struct{ name, driver string }{{"sqlite", dbtest.DriverSQLite}, {"postgres", dbtest.DriverPostgres}} {
		t.Run(dialect.name, func(t *testing.T) {
			uri := dbtest.SQLiteURI(t)
			if dialect.driver == dbtest.DriverPostgres {
				uri = dbtest.PostgresURI(t)
			}
			w := newBareWorld(t, dbtest.Open(t, dialect.driver, uri), nil)
			// whatsmeow's stores move to a second pool on the same
			// database: the plugin's transactions cannot join them.
			w.container = dbtest.WhatsmeowContainer(t, dbtest.Open(t, dialect.driver, uri))
			device, err := w.container.GetDevice(w.ctx, *w.device.ID)
			if err != nil || device == nil {
				t.Fatalf("reload device on the second pool: %v", err)
			}
			w.device = device
			inner := &heldInner{PrivacyTokenStore: w.device.PrivacyTokens}
			w.device.PrivacyTokens = inner
			w.start()
			w.connect()
			w.srv.SetMessageRule(wamock.RequireToken())
			alice := w.srv.AddContact(wamock.ContactOptions{})
			w.waitLog(1, "Imported whatsmeow's privacy tokens")

			held := inner.holdWriteOf("alice-older")
			w.secret([]byte("alice-older"))
			synced := make(chan struct{})
			go func() {
				defer close(synced)
				w.plugin.HandleHistorySync(w.ctx, &waHistorySync.HistorySync{
					SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(),
					Conversations: []*waHistorySync.Conversation{{
						ID: proto.String(alice.LID().String()), TcToken: []byte("alice-older"),
						TcTokenTimestamp: proto.Uint64(uint64(w.clock.Now().Add(-time.Hour).Unix())),
					}},
				})
			}()
			<-held.reached
			w.waitLog(1, `"joins":false`)
			w.receiveToken(alice.LID(), "alice-newer")
			eventually(t, "the newer token in whatsmeow's table", func() bool { return w.whatsmeowToken(alice.LID()) == "alice-newer" })
			close(held.release)
			<-synced

			if got := w.whatsmeowToken(alice.LID()); got != "alice-newer" {
				t.Fatalf("whatsmeow's row for alice after both write-throughs: %q, want alice-newer", got)
			}
			// whatsmeow alone, the plugin removed, sends what its table holds.
			w.reloadDevice()
			w.startPlain()
			w.connect()
			if got := childBytes(w.rawSend(alice.LID()), "tctoken"); string(got) != "alice-newer" {
				t.Fatalf("whatsmeow alone after the plugin: tctoken %q, want alice-newer", got)
			}
		})
	}
}
