package hooks

import "testing"

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
		if got := Cutoff(c.now, c.d, c.n); got != c.want {
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
	want := Timing{ReceiverDuration: 1, ReceiverBuckets: 1, SenderDuration: MaxBucketDuration, SenderBuckets: DefaultBucketCount}
	if got != want {
		t.Errorf("Clamped() = %+v, want %+v", got, want)
	}
	if (Timing{}).Clamped() != DefaultTiming() {
		t.Error("the zero Timing must clamp to the defaults")
	}
}
