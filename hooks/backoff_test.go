package hooks

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
)

func TestRetryDelayKnownAnswers(t *testing.T) {
	cases := []struct {
		n    int
		want time.Duration
	}{
		{1, time.Minute},
		{2, 2 * time.Minute},
		{3, 4 * time.Minute},
		{9, 256 * time.Minute},
		{10, 6 * time.Hour},
		{1000, 6 * time.Hour},
	}
	for _, c := range cases {
		if got := retryDelay(c.n); got != c.want {
			t.Errorf("retryDelay(%d) = %v, want %v", c.n, got, c.want)
		}
	}
}

func TestIssueBackoff(t *testing.T) {
	var b issueBackoff
	alice := types.NewJID("1", types.HiddenUserServer)
	bob := types.NewJID("2", types.HiddenUserServer)
	const now, bucket = 1000, 7
	if !b.allow(alice, bucket, now) {
		t.Fatal("no failure yet: allowed")
	}
	if next := b.failed(alice, bucket, now); next != now+60 {
		t.Fatalf("first failure: next = %d, want %d", next, now+60)
	}
	if b.allow(alice, bucket, now+59) || !b.allow(alice, bucket, now+60) {
		t.Fatal("the first retry comes after a minute")
	}
	if !b.allow(bob, bucket, now) {
		t.Fatal("backoff is per contact")
	}
	if next := b.failed(alice, bucket, now+60); next != now+60+120 {
		t.Fatalf("second failure: next = %d, want %d", next, now+180)
	}
	if !b.allow(alice, bucket+1, now+61) {
		t.Fatal("a new sender bucket starts afresh")
	}
	if next := b.failed(alice, bucket+1, now+61); next != now+61+60 {
		t.Fatalf("first failure of a new bucket: next = %d", next)
	}
	b.succeeded(alice)
	if !b.allow(alice, bucket+1, now+62) {
		t.Fatal("a success forgets the failures")
	}
	b.acceptedUnrecorded(bob, bucket)
	if b.allow(bob, bucket, now+1e6) {
		t.Fatal("accepted but unrecorded: nothing more in this bucket")
	}
	if !b.allow(bob, bucket+1, now+1e6) {
		t.Fatal("accepted but unrecorded: the next bucket issues again")
	}
}

func TestIssueFailureKind(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("issue: %w", &IQError{Code: 500}), issueFailServer},
		{fmt.Errorf("issue: %w", ErrMalformedReply), issueFailMalformed},
		{fmt.Errorf("%w: sender timestamp: %w", ErrNotRecorded, errors.New("read-only")), issueFailStore},
		{fmt.Errorf("privacy iq: %w", ErrDisconnected), issueFailUnreachable},
		{fmt.Errorf("privacy iq: %w", whatsmeow.ErrIQTimedOut), issueFailUnreachable},
		{fmt.Errorf("send privacy iq: %w", whatsmeow.ErrNotConnected), issueFailUnreachable},
	}
	for _, c := range cases {
		if got := issueFailureKind(c.err); got != c.want {
			t.Errorf("issueFailureKind(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}
