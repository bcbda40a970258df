package hooks

import (
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.mau.fi/whatsmeow/types"
)

const (
	// issueRetryBase is the wait after a contact's first failed issuance in
	// a sender bucket; each further failure doubles it, up to issueRetryMax.
	issueRetryBase = time.Minute
	issueRetryMax  = 6 * time.Hour
)

// issueBackoff remembers failed issuances per contact for the rest of the
// sender bucket, so that neither a refusing server nor a broken database
// turns every send into a privacy IQ. A new bucket starts afresh: by then
// the issuance is due anyway and the fault has had days to clear.
type issueBackoff struct {
	once    sync.Once
	mu      sync.Mutex
	entries *lru.Cache[types.JID, backoffEntry]
}

type backoffEntry struct {
	bucket   int64 // the sender bucket the failures happened in
	failures int
	next     int64 // unix seconds before which no retry
	// accepted means the server took the issuance but recording it
	// failed: nothing more to send in this bucket.
	accepted bool
}

func (b *issueBackoff) init() {
	b.once.Do(func() { b.entries, _ = lru.New[types.JID, backoffEntry](defaultCacheSize) })
}

// allow reports whether an issuance to key may be attempted at now.
func (b *issueBackoff) allow(key types.JID, bucket, now int64) bool {
	b.init()
	b.mu.Lock()
	defer b.mu.Unlock()
	entry, ok := b.entries.Peek(key)
	if !ok || entry.bucket != bucket {
		return true
	}
	return !entry.accepted && now >= entry.next
}

// failed records a failed attempt and returns when the next may happen.
func (b *issueBackoff) failed(key types.JID, bucket, now int64) int64 {
	b.init()
	b.mu.Lock()
	defer b.mu.Unlock()
	entry, ok := b.entries.Peek(key)
	if !ok || entry.bucket != bucket {
		entry = backoffEntry{bucket: bucket}
	}
	entry.failures++
	entry.next = now + int64(retryDelay(entry.failures)/time.Second)
	b.entries.Add(key, entry)
	return entry.next
}

// acceptedUnrecorded records that the server accepted an issuance that the
// database could not record: sending it again would only repeat that.
func (b *issueBackoff) acceptedUnrecorded(key types.JID, bucket int64) {
	b.init()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.entries.Add(key, backoffEntry{bucket: bucket, accepted: true})
}

// succeeded forgets key's failures.
func (b *issueBackoff) succeeded(key types.JID) {
	b.init()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.entries.Remove(key)
}

// retryDelay is the wait after the n-th consecutive failure (n ≥ 1).
func retryDelay(n int) time.Duration {
	delay := issueRetryBase
	for i := 1; i < n && delay < issueRetryMax; i++ {
		delay *= 2
	}
	return min(delay, issueRetryMax)
}
