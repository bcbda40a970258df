package hooks

import (
	"strconv"
	"testing"

	"go.mau.fi/whatsmeow/types"
)

// TestPresenceQueueBounded: a burst of presence updates starts one worker
// and queues at most maxPresencePending senders; once the worker found the
// queue empty, the next update starts another.
func TestPresenceQueueBounded(t *testing.T) {
	var q presenceQueue
	starts := 0
	for i := range maxPresencePending + 10 {
		if q.push(types.NewJID(strconv.Itoa(100000+i), types.HiddenUserServer)) {
			starts++
		}
	}
	if starts != 1 {
		t.Fatalf("a burst started %d workers, want 1", starts)
	}
	if batch := q.takeOrStop(); len(batch) != maxPresencePending {
		t.Fatalf("took %d queued senders, want the bound %d", len(batch), maxPresencePending)
	}
	if batch := q.takeOrStop(); len(batch) != 0 {
		t.Fatalf("took %d more from an empty queue", len(batch))
	}
	if !q.push(types.NewJID("200000", types.HiddenUserServer)) {
		t.Fatal("an update after the worker stopped must start another")
	}
}
