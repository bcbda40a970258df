package main

import (
	"sync"
	"time"

	"github.com/tctoken/tctoken/hooks"
)

// demoClock is the plugin's clock in the demo: it stands still until told
// to move, so five weeks pass in one call.
type demoClock struct {
	mu  sync.Mutex
	now time.Time
}

// newDemoClock starts in the middle of the current default-length bucket,
// so that the story's sends share a bucket whatever the real time is.
func newDemoClock(real time.Time) *demoClock {
	d := hooks.DefaultBucketDuration
	start := hooks.Bucket(real.Unix(), d)*d + d/2
	if start > real.Unix() {
		start -= d
	}
	return &demoClock{now: time.Unix(start, 0)}
}

func (c *demoClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *demoClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
