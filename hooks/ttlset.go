package hooks

import (
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.mau.fi/whatsmeow/types"
)

// ttlSet is a bounded set of JIDs whose members expire after ttl, checked
// when read. It replaces golang-lru's expirable.LRU, whose cleanup goroutine
// can never be stopped (its Close is commented out in v2.0.7): one per Core
// would outlive Close forever.
type ttlSet struct {
	ttl     time.Duration
	entries *lru.Cache[types.JID, time.Time] // member -> expiry
}

func newTTLSet(size int, ttl time.Duration) *ttlSet {
	entries, _ := lru.New[types.JID, time.Time](size)
	return &ttlSet{ttl: ttl, entries: entries}
}

// Add puts jid in the set for ttl from now. The value is ignored; it keeps
// the call sites of the LRU this replaced.
func (s *ttlSet) Add(jid types.JID, _ struct{}) {
	s.entries.Add(jid, time.Now().Add(s.ttl))
}

// Get reports whether jid is in the set and not expired.
func (s *ttlSet) Get(jid types.JID) (struct{}, bool) {
	expiry, ok := s.entries.Get(jid)
	if !ok {
		return struct{}{}, false
	}
	if !time.Now().Before(expiry) {
		s.entries.Remove(jid)
		return struct{}{}, false
	}
	return struct{}{}, true
}
