package hooks

import "math"

// Bucket maths for token expiry. Time is split into buckets of D seconds; a
// token stays valid for the current bucket and the N-1 before it, so expiry
// always lands on a bucket boundary rather than exactly N*D after issuance.

const (
	// DefaultBucketDuration is 7 days, in seconds.
	DefaultBucketDuration int64 = 604800
	// defaultBucketCount gives a 28-day window with the default duration.
	defaultBucketCount int64 = 4
	// maxBucketDuration is 180 days: anything longer is a misconfiguration.
	maxBucketDuration int64 = 15552000
	// maxWindow caps N·D at a year: a server asking to keep tokens longer
	// is broken, and an uncapped count overflows the cutoff.
	maxWindow int64 = 365 * 86400
)

// Timing holds the bucket parameters for both sides of the token exchange.
// The zero value means "use the defaults" for every field.
type Timing struct {
	// ReceiverDuration and ReceiverBuckets govern tokens contacts issued to us
	// (AB props 865 and 909).
	ReceiverDuration int64
	ReceiverBuckets  int64
	// SenderDuration and SenderBuckets govern the tokens we issue
	// (AB props 996 and 997).
	SenderDuration int64
	SenderBuckets  int64
}

// DefaultTiming is what the plugin uses before the server says otherwise.
func DefaultTiming() Timing {
	return Timing{
		ReceiverDuration: DefaultBucketDuration,
		ReceiverBuckets:  defaultBucketCount,
		SenderDuration:   DefaultBucketDuration,
		SenderBuckets:    defaultBucketCount,
	}
}

// Clamped returns t with fields ≤ 0 replaced by defaults (a negative value is
// a broken server, not a request for one-second tokens), durations capped at
// MaxBucketDuration and counts capped so that N·D stays within MaxWindow.
func (t Timing) Clamped() Timing {
	t.ReceiverDuration = clampDuration(t.ReceiverDuration)
	t.SenderDuration = clampDuration(t.SenderDuration)
	t.ReceiverBuckets = clampCount(t.ReceiverBuckets, t.ReceiverDuration)
	t.SenderBuckets = clampCount(t.SenderBuckets, t.SenderDuration)
	return t
}

func clampDuration(d int64) int64 {
	switch {
	case d <= 0:
		return DefaultBucketDuration
	case d > maxBucketDuration:
		return maxBucketDuration
	}
	return d
}

// clampCount applies to a count of buckets of the given (clamped) duration.
func clampCount(n, duration int64) int64 {
	if n <= 0 {
		n = defaultBucketCount
	}
	// duration ≥ 1 and ≤ MaxWindow, so the cap is at least 1.
	return min(n, maxWindow/duration)
}

// satSub and satMul saturate at the int64 bounds instead of wrapping: a
// wrapped cutoff turns "expired long ago" into "valid forever" or back.
func satSub(a, b int64) int64 {
	d := a - b
	if (b > 0 && d > a) || (b < 0 && d < a) {
		if b > 0 {
			return math.MinInt64
		}
		return math.MaxInt64
	}
	return d
}

func satMul(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	p := a * b
	if p/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
		if (a < 0) != (b < 0) {
			return math.MinInt64
		}
		return math.MaxInt64
	}
	return p
}

// Bucket returns floor(ts / duration). Timestamps before the epoch round down,
// so a negative timestamp never shares bucket 0 with a positive one.
func Bucket(ts, duration int64) int64 {
	duration = clampDuration(duration)
	b := ts / duration
	if ts < 0 && ts%duration != 0 {
		b--
	}
	return b
}

// cutoff is the oldest timestamp still valid at now: the start of the oldest
// bucket in the window of count buckets ending with the current one.
func cutoff(now, duration, count int64) int64 {
	duration = clampDuration(duration)
	count = clampCount(count, duration)
	return satMul(satSub(Bucket(now, duration), count-1), duration)
}

// ReceiverCutoff is the cutoff for tokens contacts issued to us.
func (t Timing) ReceiverCutoff(now int64) int64 {
	return cutoff(now, t.ReceiverDuration, t.ReceiverBuckets)
}

// SenderCutoff is the cutoff for tokens we issued.
func (t Timing) SenderCutoff(now int64) int64 {
	return cutoff(now, t.SenderDuration, t.SenderBuckets)
}

// ReceivedTokenValid reports whether a token a contact issued at tokenTS may
// still be attached at now. A zero timestamp is never valid.
func (t Timing) ReceivedTokenValid(tokenTS, now int64) bool {
	return tokenTS > 0 && tokenTS >= t.ReceiverCutoff(now)
}

// IssuedTokenValid reports whether the token we issued at senderTS is still
// valid on the sender side, which is what makes a reissue worthwhile.
func (t Timing) IssuedTokenValid(senderTS, now int64) bool {
	return senderTS > 0 && senderTS >= t.SenderCutoff(now)
}

// IssuanceDue reports whether we should issue our token again: never issued,
// or the sender-side bucket has rolled over since. A clock that went backwards
// never triggers one.
func (t Timing) IssuanceDue(senderTS, now int64) bool {
	if senderTS <= 0 {
		return true
	}
	return Bucket(now, t.SenderDuration) > Bucket(senderTS, t.SenderDuration)
}

// TokenExpiry is when a token issued at tokenTS stops being valid: the
// start of the bucket N buckets after its own.
func (t Timing) TokenExpiry(tokenTS int64) int64 {
	d := clampDuration(t.ReceiverDuration)
	return satMul(Bucket(tokenTS, d)+clampCount(t.ReceiverBuckets, d), d)
}
