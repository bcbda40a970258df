package hooks

import (
	"math"
	"testing"
)

const week = DefaultBucketDuration

func TestBucketKnownAnswers(t *testing.T) {
	cases := []struct{ ts, d, want int64 }{
		{604799, week, 0},
		{604800, week, 1},
		{0, week, 0},
		{-1, week, -1},
		{10*week + 12345, week, 10},
	}
	for _, c := range cases {
		if got := Bucket(c.ts, c.d); got != c.want {
			t.Errorf("Bucket(%d, %d) = %d, want %d", c.ts, c.d, got, c.want)
		}
	}
}

func TestCutoffKnownAnswers(t *testing.T) {
	cases := []struct{ now, d, n, want int64 }{
		{10 * week, week, 4, 7 * week},
		{10*week + 12345, week, 4, 7 * week},
		{10 * 3600, 3600, 3, 8 * 3600},
		{10 * week, week, 1, 10 * week},
	}
	for _, c := range cases {
		if got := cutoff(c.now, c.d, c.n); got != c.want {
			t.Errorf("Cutoff(now=%d, D=%d, N=%d) = %d, want %d", c.now, c.d, c.n, got, c.want)
		}
	}
}

func TestReceivedTokenValidity(t *testing.T) {
	tm := DefaultTiming()
	now := 10 * week
	if !tm.ReceivedTokenValid(7*week, now) {
		t.Error("t = 7D must be valid at now = 10D")
	}
	if tm.ReceivedTokenValid(7*week-1, now) {
		t.Error("t = 7D-1 must be expired at now = 10D")
	}
	if tm.ReceivedTokenValid(0, now) {
		t.Error("a zero timestamp must be expired")
	}
}

func TestIssuanceDue(t *testing.T) {
	tm := DefaultTiming()
	now := 10*week + 100
	cases := []struct {
		name     string
		senderTS int64
		want     bool
	}{
		{"never issued", 0, true},
		{"same bucket", 10*week + 1, false},
		{"previous bucket", 10*week - 1, true},
		{"clock went backwards", 11 * week, false},
	}
	for _, c := range cases {
		if got := tm.IssuanceDue(c.senderTS, now); got != c.want {
			t.Errorf("%s: IssuanceDue(%d, %d) = %v, want %v", c.name, c.senderTS, now, got, c.want)
		}
	}
}

func TestIssuedTokenValid(t *testing.T) {
	tm := DefaultTiming()
	now := 10 * week
	if !tm.IssuedTokenValid(7*week, now) || tm.IssuedTokenValid(7*week-1, now) || tm.IssuedTokenValid(0, now) {
		t.Error("sender-side validity must follow the same cutoff as the receiver side")
	}
}

func TestTimingClamped(t *testing.T) {
	got := Timing{ReceiverDuration: -5, ReceiverBuckets: -2, SenderDuration: 99999999999}.Clamped()
	want := Timing{ReceiverDuration: DefaultBucketDuration, ReceiverBuckets: defaultBucketCount, SenderDuration: maxBucketDuration, SenderBuckets: 2}
	if got != want {
		t.Errorf("Clamped() = %+v, want %+v", got, want)
	}
	if (Timing{}).Clamped() != DefaultTiming() {
		t.Error("the zero Timing must clamp to the defaults")
	}
}

func TestTimingClampedHostile(t *testing.T) {
	cases := []struct {
		name     string
		in, want Timing
	}{
		{"count MaxInt64 capped to a year of weeks",
			Timing{ReceiverDuration: week, ReceiverBuckets: math.MaxInt64, SenderDuration: week, SenderBuckets: math.MaxInt64},
			Timing{ReceiverDuration: week, ReceiverBuckets: 52, SenderDuration: week, SenderBuckets: 52}},
		{"negative and MinInt64 mean the defaults",
			Timing{ReceiverDuration: -1, ReceiverBuckets: math.MinInt64, SenderDuration: math.MinInt64, SenderBuckets: -4},
			DefaultTiming()},
		{"one-second buckets keep a year's worth",
			Timing{ReceiverDuration: 1, ReceiverBuckets: math.MaxInt64, SenderDuration: 3600, SenderBuckets: 10},
			Timing{ReceiverDuration: 1, ReceiverBuckets: maxWindow, SenderDuration: 3600, SenderBuckets: 10}},
		{"duration MaxInt64 capped to 180 days, count to 2",
			Timing{ReceiverDuration: math.MaxInt64, ReceiverBuckets: 4, SenderDuration: week, SenderBuckets: 4},
			Timing{ReceiverDuration: maxBucketDuration, ReceiverBuckets: 2, SenderDuration: week, SenderBuckets: 4}},
	}
	for _, c := range cases {
		if got := c.in.Clamped(); got != c.want {
			t.Errorf("%s: Clamped() = %+v, want %+v", c.name, got, c.want)
		}
		if got := c.in.Clamped(); got.ReceiverDuration*got.ReceiverBuckets > maxWindow || got.SenderDuration*got.SenderBuckets > maxWindow {
			t.Errorf("%s: window over a year: %+v", c.name, got)
		}
	}
}

func TestCutoffSaturates(t *testing.T) {
	cases := []struct{ now, d, n, want int64 }{
		// 909 = MaxInt64 once overflowed to a cutoff in the future; now it
		// is a year of weeks back: 10D - 51D.
		{10 * week, week, math.MaxInt64, -41 * week},
		{10 * week, -5, 4, 7 * week},
		{10 * week, week, -3, 7 * week},
		{math.MinInt64, 1, 4, math.MinInt64},
		{math.MaxInt64, 1, 1, math.MaxInt64},
		{math.MinInt64 + 1, 2, maxWindow, math.MinInt64},
	}
	for _, c := range cases {
		if got := cutoff(c.now, c.d, c.n); got != c.want {
			t.Errorf("Cutoff(now=%d, D=%d, N=%d) = %d, want %d", c.now, c.d, c.n, got, c.want)
		}
	}
	// A fresh token stays valid under the hostile count.
	tm := Timing{ReceiverDuration: week, ReceiverBuckets: math.MaxInt64}.Clamped()
	if !tm.ReceivedTokenValid(10*week, 10*week+5) {
		t.Error("a fresh token must be valid with N = MaxInt64")
	}
}

func TestSaturatingArithmetic(t *testing.T) {
	subs := []struct{ a, b, want int64 }{
		{5, 3, 2},
		{math.MinInt64, 1, math.MinInt64},
		{math.MaxInt64, -1, math.MaxInt64},
		{-5, math.MaxInt64, math.MinInt64},
		{0, math.MinInt64, math.MaxInt64},
	}
	for _, c := range subs {
		if got := satSub(c.a, c.b); got != c.want {
			t.Errorf("satSub(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	muls := []struct{ a, b, want int64 }{
		{6, 7, 42},
		{-6, 7, -42},
		{math.MaxInt64, 2, math.MaxInt64},
		{math.MinInt64, 2, math.MinInt64},
		{math.MinInt64, -1, math.MaxInt64},
		{-1, math.MinInt64, math.MaxInt64},
		{math.MaxInt64 / 2, -3, math.MinInt64},
		{0, math.MinInt64, 0},
	}
	for _, c := range muls {
		if got := satMul(c.a, c.b); got != c.want {
			t.Errorf("satMul(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
