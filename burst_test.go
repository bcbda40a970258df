package tctoken_test

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/wamock"
)

// pluginGoroutines counts the live goroutines the plugin started: those
// whose "created by" frame is in the plugin's packages. whatsmeow's own
// goroutines (one per deferred ack, for one) are not the plugin's to bound.
func pluginGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if i := bytes.Index(g, []byte("\ncreated by ")); i >= 0 && bytes.Contains(g[i:], []byte("github.com/tctoken/tctoken/")) {
			count++
		}
	}
	return count
}

// TestReceiptBurstIsBatched: 2,000 delivery receipts from 2,000 contacts
// make at most 20 privacy IQs (IssueBatchSize contacts each), the plugin
// runs a bounded number of goroutines meanwhile, and each contact is issued
// once in the bucket: a second burst from the same contacts issues nothing.
func TestReceiptBurstIsBatched(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		const contacts = 2000
		w := newWorld(t, db).connect()
		needOwnIssuance(t, w)
		jids := make([]types.JID, contacts)
		for i := range jids {
			jids[i] = types.NewJID(strconv.Itoa(400000000000000+i), types.HiddenUserServer)
		}
		issuedTo := func(mark int) map[types.JID]int {
			got := make(map[types.JID]int)
			for _, iq := range filter(w.srv.Since(mark), wamock.IsIQ("privacy", "set")) {
				for _, tok := range wamock.ParseIssuedTokens(iq) {
					got[tok.JID.ToNonAD()]++
				}
			}
			return got
		}

		var peak atomic.Int64
		stop := make(chan struct{})
		var sampler sync.WaitGroup
		sampler.Add(1)
		go func() {
			defer sampler.Done()
			for {
				if n := int64(pluginGoroutines()); n > peak.Load() {
					peak.Store(n)
				}
				select {
				case <-stop:
					return
				case <-time.After(25 * time.Millisecond): // each sample stops the world
				}
			}
		}()

		mark := w.srv.Mark()
		start := time.Now()
		for i, jid := range jids {
			w.pushReceipt(jid, types.MessageID("3EB0BURST"+strconv.Itoa(i)))
		}
		pushed := time.Since(start)
		// The wait is long because a loaded CI machine running -race on
		// PostgreSQL needs it; nothing is asserted about how long it took.
		eventuallyWithin(t, 2*time.Minute, "every contact issued", func() bool { return len(issuedTo(mark)) == contacts })
		issued := time.Since(start)
		close(stop)
		sampler.Wait()

		iqs := filter(w.srv.Since(mark), wamock.IsIQ("privacy", "set"))
		if len(iqs) > contacts/tctoken.IssueBatchSize {
			var sizes []int
			for _, iq := range iqs {
				sizes = append(sizes, len(wamock.ParseIssuedTokens(iq)))
			}
			t.Errorf("%d receipts made %d privacy IQs, want at most %d; sizes %v", contacts, len(iqs), contacts/tctoken.IssueBatchSize, sizes)
		}
		for _, iq := range iqs {
			if n := len(wamock.ParseIssuedTokens(iq)); n > tctoken.IssueBatchSize {
				t.Errorf("a privacy IQ carries %d contacts, over %d", n, tctoken.IssueBatchSize)
			}
		}
		for jid, n := range issuedTo(mark) {
			if n != 1 {
				t.Errorf("%s issued %d times", jid, n)
			}
		}
		// The queue worker, the connection loop, and room for the odd
		// short-lived task (an import, a presence): not one per receipt.
		if p := peak.Load(); p > 8 {
			t.Errorf("the plugin ran up to %d goroutines during the burst, want at most 8", p)
		}
		// Figures for the log, not assertions: how long the server took to
		// push the burst, and until the last contact was issued.
		t.Logf("%d receipts: %d privacy IQs, at most %d plugin goroutines; pushed in %v, all issued after %v",
			contacts, len(iqs), peak.Load(), pushed.Round(time.Millisecond), issued.Round(time.Millisecond))

		// The same contacts again in the same bucket: nothing is due.
		mark2 := w.srv.Mark()
		for i, jid := range jids {
			w.pushReceipt(jid, types.MessageID("3EB0AGAIN"+strconv.Itoa(i)))
		}
		// A contact that was never issued, pushed last, is the marker that
		// the queue has got through the burst.
		last := types.NewJID("499999999999999", types.HiddenUserServer)
		w.pushReceipt(last, "3EB0LAST")
		eventuallyWithin(t, 2*time.Minute, "the marker contact issued", func() bool { return issuedTo(mark2)[last] == 1 })
		if got := issuedTo(mark2); len(got) != 1 {
			t.Errorf("a second burst in the same bucket issued to %d contacts, want only the new one", len(got))
		}
	})
}

// pushReceipt delivers a bare delivery receipt from a JID for our message:
// the burst needs thousands of senders, more than wamock contacts with
// Signal keys are worth creating.
func (w *world) pushReceipt(from types.JID, id types.MessageID) {
	w.t.Helper()
	err := w.srv.Push(waBinary.Node{Tag: "receipt", Attrs: waBinary.Attrs{
		"from": from, "id": id, "t": strconv.FormatInt(time.Now().Unix(), 10),
	}})
	if err != nil {
		w.t.Fatalf("push receipt: %v", err)
	}
}
