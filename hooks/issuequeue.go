package hooks

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mau.fi/whatsmeow/types"
)

// IssueBatchSize is how many contacts one queued privacy IQ covers at most.
const IssueBatchSize = maxTokensPerIQ

const (
	// issueLinger is how long the queue waits for more contacts after the
	// last one arrived before sending a partial batch: a burst of receipts
	// then fills whole batches instead of sending one IQ per receipt.
	issueLinger = 200 * time.Millisecond
	// issueMaxWait bounds that wait when contacts keep trickling in.
	issueMaxWait = 5 * time.Second
	// maxIssuePending bounds the queue; a contact dropped from a full queue
	// is queued again by its next send or receipt.
	maxIssuePending = 10 * IssueBatchSize * IssueBatchSize
)

// issuance is the post-send and post-receipt issuance machinery: a queue
// deduplicated per contact, drained by one worker in batches, with a
// per-contact backoff for failures.
type issuance struct {
	mu      sync.Mutex
	pending map[types.JID]struct{} // contacts as given, without device
	order   []types.JID            // arrival order of pending
	wake    chan struct{}          // signalled on every enqueue
	started bool

	backoff issueBackoff
	// inflight holds the keys being issued right now, by the worker or by
	// issueOne, so that two triggers never issue to one contact at once.
	inflight sync.Map
}

// enqueue queues an issuance check for a contact without blocking and
// without a goroutine per call. The worker decides whether one is due.
func (c *Core) enqueueIssue(jid types.JID) {
	if c.closed.Load() {
		return
	}
	q := &c.issuer
	jid = jid.ToNonAD()
	q.mu.Lock()
	if q.pending == nil {
		q.pending = make(map[types.JID]struct{})
		q.wake = make(chan struct{}, 1)
	}
	_, dup := q.pending[jid]
	full := !dup && len(q.pending) >= maxIssuePending
	if !dup && !full {
		q.pending[jid] = struct{}{}
		q.order = append(q.order, jid)
	}
	start := !q.started && !full
	q.started = q.started || start
	wake := q.wake
	q.mu.Unlock()
	if full {
		c.warnOnce("issue-queue-full", errors.New("issuance queue full"), "Dropped an issuance check; the contact's next message queues it again")
		return
	}
	if start {
		c.goBackground(c.issueWorker)
	}
	select {
	case wake <- struct{}{}:
	default:
	}
}

// take removes up to n pending contacts, oldest first.
func (q *issuance) take(n int) []types.JID {
	q.mu.Lock()
	defer q.mu.Unlock()
	n = min(n, len(q.order))
	batch := make([]types.JID, n)
	copy(batch, q.order[:n])
	q.order = q.order[n:]
	for _, jid := range batch {
		delete(q.pending, jid)
	}
	if len(q.order) == 0 {
		q.order = nil // let the backing array go after a burst
	}
	return batch
}

func (q *issuance) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order)
}

// issueWorker drains the queue and exits once it is empty; the next
// enqueue starts another. A worker that waited for work would keep the
// client reachable for as long as the process runs, so that a client the
// bridge dropped without Close would never be collected.
func (c *Core) issueWorker(ctx context.Context) {
	q := &c.issuer
	q.mu.Lock()
	wake := q.wake
	q.mu.Unlock()
	for q.pendingOrStop() {
		if !c.linger(ctx, wake) {
			q.stop()
			return
		}
		if batch := q.take(IssueBatchSize); len(batch) > 0 {
			c.issueBatch(ctx, batch)
		}
	}
}

// pendingOrStop reports whether contacts are pending. When none are, the
// worker counts as stopped from then on, under the same lock enqueue
// takes, so that a contact queued right after starts a new worker.
func (q *issuance) pendingOrStop() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.order) > 0 {
		return true
	}
	q.started = false
	return false
}

// stop marks the worker stopped on shutdown.
func (q *issuance) stop() {
	q.mu.Lock()
	q.started = false
	q.mu.Unlock()
}

// linger waits until a whole batch is pending, or no contact arrived for
// issueLinger, or issueMaxWait passed. It reports false on shutdown.
func (c *Core) linger(ctx context.Context, wake chan struct{}) bool {
	deadline := time.NewTimer(issueMaxWait)
	defer deadline.Stop()
	quiet := time.NewTimer(issueLinger)
	defer quiet.Stop()
	for c.issuer.len() < IssueBatchSize {
		select {
		case <-ctx.Done():
			return false
		case <-c.stop:
			return false
		case <-deadline.C:
			return true
		case <-quiet.C:
			return true
		case <-wake:
			quiet.Reset(issueLinger)
		}
	}
	return true
}

// issueBatch issues to whichever of the contacts are due and not backing
// off, in one privacy IQ.
func (c *Core) issueBatch(ctx context.Context, jids []types.JID) {
	acc, err := c.acct(ctx)
	if err != nil {
		return
	}
	own := c.own()
	now := c.nowUnix()
	policy := acc.policy.Load()
	bucket := Bucket(now, policy.Timing.SenderDuration)
	targets := make([]issueRecipient, 0, len(jids))
	keyOf := make(map[types.JID]types.JID, len(jids))
	var claimed []types.JID
	defer func() {
		for _, key := range claimed {
			c.issuer.inflight.Delete(key)
		}
	}()
	cands := make([]issueCandidate, 0, len(jids))
	seen := make(map[types.JID]bool, len(jids))
	for _, jid := range jids {
		if ineligible(jid, own) != "" {
			continue
		}
		key, lid, pn := c.resolve(ctx, jid)
		if seen[key] || ineligible(key, own) != "" {
			continue
		}
		seen[key] = true
		cands = append(cands, issueCandidate{key: key, lid: lid, pn: pn})
	}
	senderTS, err := c.senderTimestamps(ctx, acc, cands)
	if err != nil {
		return // logged once by senderTimestamps; the next trigger queues again
	}
	for _, cand := range cands {
		if !policy.Timing.IssuanceDue(senderTS[cand.key], now) || !c.issuer.backoff.allow(cand.key, bucket, now) {
			continue
		}
		target := issueTarget(policy.IssueToLID, cand.key, cand.lid, cand.pn)
		if _, dup := keyOf[target]; dup {
			continue
		}
		if _, busy := c.issuer.inflight.LoadOrStore(cand.key, struct{}{}); busy {
			continue
		}
		claimed = append(claimed, cand.key)
		keyOf[target] = cand.key
		targets = append(targets, issueRecipient{JID: target, T: now})
	}
	if len(targets) == 0 {
		return
	}
	out, err := c.issue(ctx, acc, targets, keyOf)
	c.noteIssuance(out, err, bucket, now, "queue")
}

// issueCandidate is a contact of a queued batch, resolved.
type issueCandidate struct{ key, lid, pn types.JID }

// senderTimestamps reads when we last issued to each candidate: from the
// cache when it holds the contact and no write made the entry stale, else
// in one query for the whole batch
// (rows under the LID and the PN merged, as lookup does), instead of one
// query per contact. Nothing read here is cached: the batch needs only the
// sender timestamps, and lookup keeps the cache's rules in one place.
func (c *Core) senderTimestamps(ctx context.Context, acc *accountState, cands []issueCandidate) (map[types.JID]int64, error) {
	out := make(map[types.JID]int64, len(cands))
	owner := make(map[types.JID]types.JID)
	var missing []types.JID
	for _, cand := range cands {
		if entry, ok := c.cache.Get(cand.key); ok && !entry.stale {
			out[cand.key] = entry.senderTS
			continue
		}
		for _, jid := range []types.JID{cand.key, cand.pn, cand.lid} {
			if jid.IsEmpty() {
				continue
			}
			if _, dup := owner[jid]; !dup {
				owner[jid] = cand.key
				missing = append(missing, jid)
			}
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	rows, err := acc.store.GetMany(ctx, missing...)
	if err != nil {
		c.warnOnce("read", err, "Failed to read privacy tokens; going on without them")
		return nil, fmt.Errorf("read sender timestamps of %d contacts (first %s): %w", len(cands), cands[0].key, err)
	}
	c.clearWarned("read")
	for _, row := range rows {
		if key, ok := owner[row.Contact.ToNonAD()]; ok {
			out[key] = max(out[key], row.SenderTS)
		}
	}
	return out, nil
}

// noteIssuance feeds an issuance's outcome to the backoff and logs each
// kind of failure once until that kind recovers.
func (c *Core) noteIssuance(out issueOutcome, err error, bucket, now int64, trigger string) {
	kind := "issue"
	if trigger == "463" || trigger == "identity change" {
		kind = "reissue"
	}
	c.metrics.issued(kind, true, len(out.recorded)+len(out.unrecorded))
	c.metrics.issued(kind, false, len(out.refused))
	for _, key := range out.recorded {
		c.issuer.backoff.succeeded(key)
	}
	for _, key := range out.unrecorded {
		c.issuer.backoff.acceptedUnrecorded(key, bucket)
	}
	var next int64
	for _, key := range out.refused {
		next = c.issuer.backoff.failed(key, bucket, now)
	}
	if len(out.recorded) > 0 || len(out.unrecorded) > 0 {
		// The server answered and accepted: its failure kinds recovered.
		c.clearWarned(issueFailServer)
		c.clearWarned(issueFailUnreachable)
		c.clearWarned(issueFailMalformed)
	}
	if len(out.recorded) > 0 && err == nil {
		c.clearWarned(issueFailStore)
	}
	if err == nil {
		return
	}
	failKind := issueFailureKind(err)
	first := ""
	switch {
	case len(out.refused) > 0:
		first = out.refused[0].String()
	case len(out.unrecorded) > 0:
		first = out.unrecorded[0].String()
	}
	if _, seen := c.logOnce.LoadOrStore(failKind, struct{}{}); seen {
		c.log.Debug().Err(err).Str("kind", failKind).Str("trigger", trigger).Msg("Failed to issue our privacy token again; backing off")
		return
	}
	ev := c.log.Warn().Err(err).Str("kind", failKind).Str("trigger", trigger).Str("first_contact", first).
		Int("contacts", len(out.refused)+len(out.unrecorded))
	if next > 0 {
		ev = ev.Time("retry_after", time.Unix(next, 0))
	}
	ev.Msg("Failed to issue our privacy token; backing off per contact and logging this kind once until it recovers")
}

// Kinds of issuance failure, each logged once until it recovers.
const (
	issueFailServer      = "issue-refused"
	issueFailUnreachable = "issue-unreachable"
	issueFailMalformed   = "issue-malformed-reply"
	issueFailStore       = "issue-store"
)

func issueFailureKind(err error) string {
	var iqErr *IQError
	switch {
	case errors.Is(err, ErrNotRecorded):
		return issueFailStore
	case errors.As(err, &iqErr):
		return issueFailServer
	case errors.Is(err, ErrMalformedReply):
		return issueFailMalformed
	}
	// Not sent, no reply, or the connection dropped.
	return issueFailUnreachable
}
