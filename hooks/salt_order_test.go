package hooks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/proto/waE2E"
	waServerSync "go.mau.fi/whatsmeow/proto/waServerSync"
	"google.golang.org/protobuf/proto"

	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/sqlstore"
	"github.com/tctoken/tctoken/wamock"
)

// saltWrites records the app-state salts written to the store, in order.
type saltWrites struct {
	AccountStore
	mu    *sync.Mutex
	salts *[][]byte
}

func (s saltWrites) SetAppStateSalt(ctx context.Context, salt []byte) error {
	err := s.AccountStore.SetAppStateSalt(ctx, salt)
	if err == nil {
		s.mu.Lock()
		*s.salts = append(*s.salts, bytes.Clone(salt))
		s.mu.Unlock()
	}
	return err
}

// TestSaltChangesApplyInOrder: one app-state sync brings two SETs of the
// salt, the older first. Their two changes run on goroutines of their own;
// the test holds the older one back until the newer one has applied, the
// order the scheduler may pick. The older must then not be written over
// the newer, and the next first-contact send carries the cstoken of the
// newer salt.
func TestSaltChangesApplyInOrder(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		older, newer := []byte("salt-older-0123456789"), []byte("salt-newer-0123456789")
		srv := wamock.NewServer(t)
		device, err := srv.NewDevice(ctx, dbtest.WhatsmeowContainer(t, db))
		if err != nil {
			t.Fatal(err)
		}
		cli := srv.NewClient(device, nil)
		plugin := sqlstore.New(db)
		if err := plugin.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var written [][]byte
		logs := &lockedBuffer{}
		c := New(cli, plugin, Config{Log: zerolog.New(logs).Level(zerolog.DebugLevel), WrapStore: func(s AccountStore) AccountStore {
			return saltWrites{AccountStore: s, mu: &mu, salts: &written}
		}})
		c.beforeSaltChange = func(salt []byte) {
			if !bytes.Equal(salt, older) {
				return
			}
			deadline := time.Now().Add(10 * time.Second)
			for !bytes.Equal(c.Salt(), newer) {
				if time.Now().After(deadline) {
					t.Error("the newer salt never applied while the older one was held")
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		if err := c.Attach(ctx); err != nil {
			t.Fatal(err)
		}
		srv.ConnectAndWait(t, cli)
		t.Cleanup(func() {
			c.Close()
			srv.WaitIdle(device.ID.Device, time.Second)
			cli.Disconnect()
		})
		if err := srv.Phone().ShareAppStateKeys(ctx); err != nil {
			t.Fatal(err)
		}
		// whatsmeow synced regular_high with the keys: the plugin re-read it.
		waitFor(t, "the sync with the app-state keys", func() bool {
			return strings.Contains(logs.String(), "Re-read regular_high for the NCT salt")
		})
		set := func(salt []byte) wamock.AppStateMutation {
			return wamock.AppStateMutation{Operation: waServerSync.SyncdMutation_SET,
				Index: []string{wamock.NctSaltIndex}, Value: wamock.NctSaltValue(salt), Version: 1}
		}
		// Two patches, one notification: whatsmeow fetches both in one sync.
		if err := srv.Phone().AppendAppStatePatch(appstate.WAPatchRegularHigh, set(older)); err != nil {
			t.Fatal(err)
		}
		if err := srv.Phone().SendAppStatePatch(ctx, appstate.WAPatchRegularHigh, set(newer)); err != nil {
			t.Fatal(err)
		}
		// The held older change ends one way or the other: written (over
		// the newer one), or dropped as overtaken.
		waitFor(t, "the older salt change to end", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return slices.ContainsFunc(written, func(w []byte) bool { return bytes.Equal(w, older) }) ||
				strings.Contains(logs.String(), "overtaken by a newer one")
		})
		// The newer salt is the last one written. (On the newer whatsmeow,
		// which schedules a re-read of regular_high for every salt it
		// stores, the re-read can apply the newer salt before the events
		// do; the older event's change may then be written in between,
		// and the newer event's change puts the newer salt back. Ordering
		// the re-read against the events needs a version the events do
		// not carry.)
		waitFor(t, "the newer salt to be the last one written", func() bool {
			mu.Lock()
			defer mu.Unlock()
			n := len(written)
			return n > 0 && bytes.Equal(written[n-1], newer)
		})
		// The next first contact gets the newer salt's cstoken.
		alice := srv.AddContact(wamock.ContactOptions{})
		mark := srv.Mark()
		if _, err := c.SendMessage(ctx, alice.LID(), &waE2E.Message{Conversation: proto.String("hi")}); err != nil {
			t.Fatal(err)
		}
		msg := srv.WaitForSince(t, mark, "message to alice", wamock.IsMessageTo(alice.LID()), 5*time.Second)
		cstoken, _ := msg.GetOptionalChildByTag("cstoken")
		got, _ := cstoken.Content.([]byte)
		mac := hmac.New(sha256.New, newer)
		mac.Write([]byte(alice.LID().User + "@lid"))
		if want := mac.Sum(nil); !bytes.Equal(got, want) {
			t.Fatalf("cstoken %x, want the newer salt's %x", got, want)
		}
	})
}

// lockedBuffer collects log lines from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond until it holds, failing t after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
