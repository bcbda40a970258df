package hooks

import (
	"strconv"
	"testing"

	"go.mau.fi/whatsmeow/types"
)

// TestHistoryFactsBoundedNewestWins checks the two generations: never more
// than the size held, the newest fact of a key returned, and the most
// recent facts kept when older ones go.
func TestHistoryFactsBoundedNewestWins(t *testing.T) {
	const size = 100
	facts := newHistoryFacts(size)
	key := func(i int) types.JID { return types.NewJID(strconv.Itoa(300000000000000+i), types.HiddenUserServer) }
	facts.Add(key(0), historyFact{tokenTS: 1})
	facts.Add(key(1), historyFact{tokenTS: 1})
	for i := 2; i < 1000; i++ {
		facts.Add(key(i), historyFact{tokenTS: int64(i)})
		if i == size/2 {
			// key 0 now sits in the previous generation: a newer fact for
			// it must win over that one.
			facts.Add(key(0), historyFact{tokenTS: 2})
			if fact, ok := facts.Get(key(0)); !ok || fact.tokenTS != 2 {
				t.Fatalf("Get(key 0) = %+v, %v; want the newer fact", fact, ok)
			}
		}
		if n := facts.held(); n > size {
			t.Fatalf("%d facts held after %d adds; the bound is %d", n, i+1, size)
		}
	}
	for i := 1000 - size/2; i < 1000; i++ {
		if fact, ok := facts.Get(key(i)); !ok || fact.tokenTS != int64(i) {
			t.Fatalf("recent fact %d: %+v, %v", i, fact, ok)
		}
	}
	if _, ok := facts.Get(key(1)); ok {
		t.Fatal("the oldest fact outlived two generations")
	}
}

// held is how many facts are kept in both generations.
func (h *historyFacts) held() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.cur) + len(h.old)
}
