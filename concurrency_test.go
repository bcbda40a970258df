package tctoken_test

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/wamock"
)

// TestConcurrentTraffic: 20 goroutines send 200 messages to 100 contacts
// while half of the contacts send tokens (each a newer one, then an older
// one that must lose), ten contacts reinstall and the plugin prunes. In the
// end each contact messaged was issued once in the bucket (a reissue after
// an identity change repeats the same t), every recorded sender timestamp
// is that issuance, and every newest token is there.
func TestConcurrentTraffic(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		const nContacts, senders, sendsEach = 100, 20, 10
		w := newWorld(t, db).connect()
		needOwnIssuance(t, w) // it checks every issuance's t against the plugin's clock
		contacts := make([]*wamock.Contact, nContacts)
		for i := range contacts {
			contacts[i] = w.srv.AddContact(wamock.ContactOptions{})
		}
		now := w.clock.Now()
		mark := w.srv.Mark()
		target := func(g, i int) *wamock.Contact { return contacts[(g*sendsEach+i*7)%nContacts] }
		sentTo := make(map[types.JID]bool)
		for g := range senders {
			for i := range sendsEach {
				sentTo[target(g, i).LID()] = true
			}
		}

		var wg sync.WaitGroup
		for g := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range sendsEach {
					if _, err := w.plugin.SendMessage(w.ctx, target(g, i).LID(), text(fmt.Sprintf("%d/%d", g, i))); err != nil {
						t.Errorf("send %d/%d: %v", g, i, err)
					}
				}
			}()
		}
		wg.Add(3)
		go func() {
			defer wg.Done()
			for i, c := range contacts[:nContacts/2] {
				newer := []byte("token-new-" + strconv.Itoa(i))
				older := []byte("token-old-" + strconv.Itoa(i))
				if err := w.srv.PushPrivacyToken(c.LID(), types.EmptyJID, w.srv.OwnLID(), newer, now.Unix()); err != nil {
					t.Error(err)
				}
				if err := w.srv.PushPrivacyToken(c.LID(), types.EmptyJID, w.srv.OwnLID(), older, now.Unix()-60); err != nil {
					t.Error(err)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for _, c := range contacts[:10] {
				if err := c.NotifyIdentityChange(); err != nil {
					t.Error(err)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 5 {
				if _, err := w.plugin.PruneExpired(w.ctx); err != nil {
					t.Error(err)
				}
			}
		}()
		wg.Wait()

		eventuallyWithin(t, 2*time.Minute, "every contact messaged is issued", func() bool {
			for jid := range sentTo {
				if e, err := w.plugin.Get(w.ctx, jid); err != nil || e == nil || e.SenderTimestamp.IsZero() {
					return false
				}
			}
			return true
		})
		for i, c := range contacts[:nContacts/2] {
			w.waitToken(c.LID(), []byte("token-new-"+strconv.Itoa(i)))
		}
		w.plugin.Close()

		for _, c := range contacts {
			iqs := w.privacyIQsFor(mark, c.LID())
			if !sentTo[c.LID()] {
				if len(iqs) != 0 {
					t.Errorf("%s was never messaged but issued %d times", c.LID(), len(iqs))
				}
				continue
			}
			if len(iqs) == 0 {
				t.Errorf("%s was messaged but never issued", c.LID())
				continue
			}
			for _, iq := range iqs {
				if got := issuedT(iq, c.LID()); got != strconv.FormatInt(now.Unix(), 10) {
					t.Errorf("%s issued with t = %s, want the one issuance of the bucket at %d", c.LID(), got, now.Unix())
				}
			}
			reinstalled := false
			for _, r := range contacts[:10] {
				reinstalled = reinstalled || r == c
			}
			if len(iqs) > 1 && !(reinstalled && len(iqs) == 2) {
				t.Errorf("%s: %d privacy IQs, want 1 (2 after a reinstall)", c.LID(), len(iqs))
			}
			e, _ := w.plugin.Get(w.ctx, c.LID())
			if e == nil || e.SenderTimestamp.Unix() != now.Unix() {
				t.Errorf("%s: sender timestamp %+v, want %d", c.LID(), e, now.Unix())
			}
		}
	})
}
