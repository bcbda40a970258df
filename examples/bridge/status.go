package main

import (
	"context"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/hooks"
)

// chatStatus is what /status reports, gathered before it is printed so that
// tests can check the numbers rather than the wording. It holds no secret:
// tokens appear as short hashes only.
type chatStatus struct {
	Chat   types.JID
	Paired bool
	Now    time.Time
	Policy tctoken.Policy
	// Stored is the key the plugin files the chat under (its LID when
	// known); empty when nothing is stored.
	Stored types.JID

	HasToken     bool
	TokenHash    string
	TokenAt      time.Time // the contact's t
	TokenExpires time.Time // first instant at which it is no longer attached
	TokenValid   bool

	HasSalt bool

	IssuedAt time.Time // our last issuance (sender timestamp); zero if never
	// IssueDueAfter is the bucket boundary after which the next send issues
	// our token again.
	IssueDueAfter time.Time
	// IssuedExpires is when that issuance stops counting on the sender
	// side, and with it the reissue on a reinstall.
	IssuedExpires time.Time

	Attach     tctoken.Decision // what the next message carries
	AttachHash string

	ReadErr error // reading the plugin's store failed; the rest is partial
}

// receivedExpiry is the first bucket boundary at which a token issued at ts
// is no longer valid: the window holds the current bucket and the N-1 before
// it, so the token dies when bucket(now) reaches bucket(ts)+N.
func receivedExpiry(timing tctoken.Timing, ts int64) int64 {
	timing = timing.Clamped()
	return (hooks.Bucket(ts, timing.ReceiverDuration) + timing.ReceiverBuckets) * timing.ReceiverDuration
}

// issuedExpiry is the same boundary on the sender side, for our issuance.
func issuedExpiry(timing tctoken.Timing, ts int64) int64 {
	timing = timing.Clamped()
	return (hooks.Bucket(ts, timing.SenderDuration) + timing.SenderBuckets) * timing.SenderDuration
}

// nextIssuance is the start of the sender bucket after the one holding ts:
// from then on a send issues our token again.
func nextIssuance(timing tctoken.Timing, ts int64) int64 {
	timing = timing.Clamped()
	return (hooks.Bucket(ts, timing.SenderDuration) + 1) * timing.SenderDuration
}

// Status gathers the chat's status from the plugin.
func (b *Bridge) Status(ctx context.Context) chatStatus {
	now := b.now()
	st := chatStatus{
		Chat:    b.chat,
		Paired:  b.cli.Store.ID != nil,
		Now:     now,
		Policy:  b.plugin.Policy(),
		HasSalt: b.plugin.HasSalt(),
	}
	st.Attach = b.plugin.Decide(ctx, b.chat)
	st.AttachHash = tctoken.ShortHash(st.Attach.Token)
	if !st.Paired {
		return st
	}
	entry, err := b.plugin.Get(ctx, b.chat)
	if err != nil {
		st.ReadErr = err
		return st
	}
	if entry == nil {
		return st
	}
	st.Stored = entry.JID
	timing := st.Policy.Timing
	if len(entry.Token) > 0 {
		st.HasToken = true
		st.TokenHash = tctoken.ShortHash(entry.Token)
		st.TokenAt = entry.TokenTimestamp
		st.TokenExpires = time.Unix(receivedExpiry(timing, entry.TokenTimestamp.Unix()), 0)
		st.TokenValid = timing.ReceivedTokenValid(entry.TokenTimestamp.Unix(), now.Unix())
	}
	if !entry.SenderTimestamp.IsZero() {
		ts := entry.SenderTimestamp.Unix()
		st.IssuedAt = entry.SenderTimestamp
		st.IssueDueAfter = time.Unix(nextIssuance(timing, ts), 0)
		st.IssuedExpires = time.Unix(issuedExpiry(timing, ts), 0)
	}
	return st
}

func (b *Bridge) printStatus(ctx context.Context) {
	st := b.Status(ctx)
	for _, line := range st.lines() {
		b.printf("%s", line)
	}
}

// lines renders the status for the terminal.
func (st chatStatus) lines() []string {
	out := []string{fmt.Sprintf("Status of %s", st.Chat)}
	add := func(label, format string, args ...any) {
		out = append(out, fmt.Sprintf("  %-22s %s", label+":", fmt.Sprintf(format, args...)))
	}
	if !st.Paired {
		add("account", "not paired yet")
	}
	if !st.Stored.IsEmpty() && st.Stored != st.Chat {
		add("stored as", "%s", st.Stored)
	}
	switch {
	case st.ReadErr != nil:
		add("their token", "unknown (%v)", st.ReadErr)
	case !st.HasToken:
		add("their token", "none held")
	default:
		state := "valid until"
		if !st.TokenValid {
			state = "expired since"
		}
		add("their token", "held, sha256 %s, t=%s, %s %s", st.TokenHash, stamp(st.TokenAt), state, relStamp(st.TokenExpires, st.Now))
	}
	if st.HasSalt {
		add("NCT salt", "yes (first messages can carry a cstoken)")
	} else {
		add("NCT salt", "no (it arrives from the phone by app state sync)")
	}
	if st.IssuedAt.IsZero() {
		add("our token to them", "never issued (the next accepted message issues it)")
	} else {
		add("our token to them", "issued t=%s; issued again on the first send after %s; valid for them until %s",
			stamp(st.IssuedAt), relStamp(st.IssueDueAfter, st.Now), stamp(st.IssuedExpires))
	}
	switch st.Attach.Attach {
	case tctoken.AttachNothing:
		add("next message carries", "no token (%s)", st.Attach.Reason)
	default:
		add("next message carries", "<%s> sha256 %s (%s)", st.Attach.Attach, st.AttachHash, st.Attach.Reason)
	}
	t := st.Policy.Timing
	add("expiry windows", "received %d × %s, issued %d × %s", t.ReceiverBuckets, span(t.ReceiverDuration), t.SenderBuckets, span(t.SenderDuration))
	return out
}

// stamp prints a time in UTC, to the second: the protocol's t values are
// Unix seconds, and UTC keeps bucket boundaries recognisable.
func stamp(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// relStamp is stamp plus how far away the time is.
func relStamp(t, now time.Time) string {
	d := t.Sub(now)
	if d >= 0 {
		return fmt.Sprintf("%s (in %s)", stamp(t), human(d))
	}
	return fmt.Sprintf("%s (%s ago)", stamp(t), human(-d))
}

// span prints a bucket duration given in seconds.
func span(seconds int64) string { return human(time.Duration(seconds) * time.Second) }

// human prints a duration in days and hours, the scale tokens live at.
func human(d time.Duration) string {
	d = d.Round(time.Second)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	hours := d / time.Hour
	d -= hours * time.Hour
	switch {
	case days > 0 && hours > 0:
		return fmt.Sprintf("%dd%dh", days, hours)
	case days > 0:
		return fmt.Sprintf("%dd", days)
	case hours > 0:
		return fmt.Sprintf("%dh%dm", hours, d/time.Minute)
	}
	return d.String()
}
