package hooks

import (
	"sync"

	"go.mau.fi/whatsmeow/types"
)

// historyFacts holds what recent history syncs said about contacts, for
// correcting whatsmeow's own write of the same tokens when it lands. A fact
// matters for as long as that write can still come, so recent facts are
// what must be kept, not the most read ones: two generations of plain maps
// keep them for the price of one map write each, where an LRU moved a list
// element on every read and write, a few thousand times per history blob.
// A full current generation becomes the previous one and the previous one
// is dropped, so at most size facts are held.
type historyFacts struct {
	mu       sync.Mutex
	perGen   int
	cur, old map[types.JID]historyFact
}

func newHistoryFacts(size int) *historyFacts {
	perGen := max(size/2, 1)
	return &historyFacts{perGen: perGen, cur: make(map[types.JID]historyFact)}
}

// Add records fact for key, replacing an older one.
func (h *historyFacts) Add(key types.JID, fact historyFact) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.cur[key]; !ok && len(h.cur) >= h.perGen {
		h.old, h.cur = h.cur, make(map[types.JID]historyFact, h.perGen)
	}
	h.cur[key] = fact
}

// Get returns the newest fact recorded for key.
func (h *historyFacts) Get(key types.JID) (historyFact, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if fact, ok := h.cur[key]; ok {
		return fact, true
	}
	fact, ok := h.old[key]
	return fact, ok
}
