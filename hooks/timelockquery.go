package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// The timelock query: WhatsApp Web's WAWebMexFetchReachoutTimelockJobQuery,
// a MEX (GraphQL over an IQ) query without variables, which it runs after
// every connect. The server answers
//
//	{"data":{"xwa2_fetch_account_reachout_timelock":{"is_active":true,"time_enforcement_ends":"1767225600","enforcement_type":"DEFAULT"}}}
//
// with the end as a string of Unix seconds ("0" or nothing when none).
const (
	timelockQueryID    = "23983697327930364"
	timelockQueryField = "xwa2_fetch_account_reachout_timelock"
)

const (
	// timelockQueryInterval is how long an answer stands before the plugin
	// asks again, on a connect or during a long connection, until the AB
	// props say otherwise (see timelockInterval): long enough that
	// reconnects cost nothing, short enough that whatsmeow 2025-12, which
	// drops the server's notification, learns of a new lock within the
	// hour.
	timelockQueryInterval = time.Hour
	// timelockQueryRetry is how soon a failed query is tried again.
	timelockQueryRetry = 5 * time.Minute
	// timelockRequeryMin spaces the queries the pattern asks for: refused
	// first contacts while the server said lately that no lock applies.
	timelockRequeryMin = time.Minute
	// timelockQueryTimeout bounds one query and the record of its answer:
	// it runs in the background, and a server that does not answer must
	// not hold its slot for long.
	timelockQueryTimeout = mexQueryTimeout
	// timelockDefaultEnd is the end given to a lock the server named
	// without one, counted from when it was heard of (Baileys does the
	// same): the next query or notification says more, and a lock without
	// an end would otherwise stand until one does.
	timelockDefaultEnd = 60 * time.Second
)

// Triggers of the timelock query.
const (
	timelockOnConnect = "connect"
	timelockOnRefresh = "refresh"
	timelockOnPattern = "pattern"
	timelockOnRequest = "request"
)

// timelockQueryState follows the account's timelock queries; the
// timelockWatch's mutex guards it.
type timelockQueryState struct {
	// at is when the last query was sent (Unix seconds); 0 means never in
	// this process, where the stored answer's time stands in.
	at int64
	// failed: the last query got no usable answer, so the pattern applies.
	failed bool
	// running: a query is under way.
	running bool
}

// lastQueried is when the server last answered or was last asked: the
// query of this process, else the stored state when the query recorded it
// (a restart within the interval asks nothing).
func (acc *accountState) lastQueried() int64 {
	if at := acc.watch.query.at; at != 0 {
		return at
	}
	if tl := acc.timelock.Load(); tl != nil && tl.Source == TimelockFromQuery && !tl.Updated.IsZero() {
		return tl.Updated.Unix()
	}
	return 0
}

// timelockInterval is how long an answer to the timelock query stands: the
// fetch TTL the server gives the account's limits (AB prop 20649, for the
// new-chat cap, the other account-limit fetch), which WhatsApp tunes per
// account; the default interval until the props say.
func (acc *accountState) timelockInterval() time.Duration {
	if p := acc.policy.Load(); p != nil && p.NewChatCap.FetchTTL > 0 {
		return p.NewChatCap.FetchTTL
	}
	return timelockQueryInterval
}

// untilTimelockQuery is how long until the timelock query is due for the
// trigger: 0 or less when it is due now.
func (c *Core) untilTimelockQuery(acc *accountState, trigger string) time.Duration {
	wait := acc.timelockInterval()
	switch {
	case trigger == timelockOnPattern:
		wait = timelockRequeryMin
	case acc.watch.query.failed:
		wait = timelockQueryRetry
	}
	last := acc.lastQueried()
	if last == 0 {
		return 0
	}
	return time.Unix(last, 0).Add(wait).Sub(c.now())
}

// startTimelockQuery queries the timelock in the background when the
// trigger makes it due and none is under way, and reports whether it did.
// Nothing waits for the answer: not the connect, not a send.
func (c *Core) startTimelockQuery(acc *accountState, trigger string) bool {
	w := &acc.watch
	w.mu.Lock()
	if w.query.running {
		w.mu.Unlock()
		return false
	}
	if until := c.untilTimelockQuery(acc, trigger); until > 0 {
		w.mu.Unlock()
		if trigger == timelockOnConnect {
			c.log.Debug().Str("trigger", trigger).Dur("due_in", until).Msg("Skipped the reach-out timelock query: the last answer is recent")
		}
		return false
	}
	w.query.running = true
	w.query.at = c.nowUnix()
	w.mu.Unlock()
	c.goBackground(func(ctx context.Context) { c.runTimelockQuery(ctx, acc, trigger) })
	return true
}

// runTimelockQuery is the background query: it queries, records the
// answer, and logs one line when the query fails, leaving what is known as
// it was and letting the pattern stand in.
func (c *Core) runTimelockQuery(ctx context.Context, acc *accountState, trigger string) {
	_, err := c.queryTimelock(ctx, acc, trigger)
	w := &acc.watch
	w.mu.Lock()
	w.query.running = false
	w.mu.Unlock()
	if err != nil {
		c.warnOnce("timelock-query", err, "Failed to query the reach-out timelock; what was known stands, and refused first contacts point to one until the next query")
		return
	}
	c.clearWarned("timelock-query")
}

// RefreshTimelock asks the server for the account's timelock now, whatever
// the interval, records the answer and returns the state in force. On a
// failure the last known state stays, and the error matches
// ErrTimelockQuery.
func (c *Core) RefreshTimelock(ctx context.Context) (TimelockState, error) {
	acc, err := c.acct(ctx)
	if err != nil {
		return TimelockState{}, fmt.Errorf("tctoken: refresh the reach-out timelock: %w", err)
	}
	w := &acc.watch
	w.mu.Lock()
	w.query.at = c.nowUnix()
	w.mu.Unlock()
	if _, err := c.queryTimelock(ctx, acc, timelockOnRequest); err != nil {
		return c.Timelock(), fmt.Errorf("tctoken: refresh the reach-out timelock: %w", err)
	}
	return c.Timelock(), nil
}

// ErrTimelockQuery means the timelock query got no usable answer: an IQ
// error, a GraphQL error, an answer it cannot read, or none in time.
var ErrTimelockQuery = errors.New("reach-out timelock query failed")

// queryTimelock sends the timelock query and records the answer; it notes
// whether the query failed, which lets the pattern stand in.
func (c *Core) queryTimelock(ctx context.Context, acc *accountState, trigger string) (TimelockState, error) {
	ctx, cancel := context.WithTimeout(ctx, timelockQueryTimeout)
	defer cancel()
	c.log.Debug().Str("trigger", trigger).Msg("Querying the reach-out timelock")
	data, err := c.queryMex(ctx, timelockQueryID, map[string]any{})
	var state TimelockState
	var problem error
	if err == nil {
		state, problem, err = parseTimelockReply(data)
	}
	w := &acc.watch
	w.mu.Lock()
	w.query.failed = err != nil
	w.mu.Unlock()
	if err != nil {
		return TimelockState{}, fmt.Errorf("%w: %w", ErrTimelockQuery, err)
	}
	if problem != nil {
		c.log.Warn().Err(problem).Msg("Read the reach-out timelock answer in part")
	}
	state.Source = TimelockFromQuery
	state = withDefaultEnd(state, c.now())
	c.recordTimelock(ctx, acc, state, "query at "+trigger)
	return state, nil
}

// errTimelockReply marks an answer to the timelock query that does not
// have the shape the plugin reads.
var errTimelockReply = errors.New("malformed reach-out timelock answer")

// parseTimelockReply reads the "data" of the timelock query's answer. An
// answer that says nothing of whether a lock is active is an error: the
// plugin never lifts a lock on a reply it cannot read. An end it cannot
// read is no error (the lock stands, with the default end) but a problem,
// which the caller logs.
func parseTimelockReply(data json.RawMessage) (state TimelockState, problem, err error) {
	var reply map[string]json.RawMessage
	if err := json.Unmarshal(data, &reply); err != nil {
		return state, nil, fmt.Errorf("%w: %w", errTimelockReply, err)
	}
	raw, ok := reply[timelockQueryField]
	if !ok || isJSONNull(raw) {
		return state, nil, fmt.Errorf("%w: no %s in the data", errTimelockReply, timelockQueryField)
	}
	var body struct {
		IsActive        *bool           `json:"is_active"`
		Ends            json.RawMessage `json:"time_enforcement_ends"`
		EnforcementType *string         `json:"enforcement_type"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return state, nil, fmt.Errorf("%w: %w", errTimelockReply, err)
	}
	if body.IsActive == nil {
		return state, nil, fmt.Errorf("%w: no is_active", errTimelockReply)
	}
	state.Active = *body.IsActive
	if body.EnforcementType != nil {
		state.Enforcement = *body.EnforcementType
	}
	ends, err := parseUnixSeconds(body.Ends)
	if err != nil {
		problem = fmt.Errorf("time_enforcement_ends %s is not Unix seconds; taken as no end: %w", body.Ends, err)
	} else if ends > 0 {
		state.Ends = time.Unix(ends, 0)
	}
	return state, problem, nil
}

// parseUnixSeconds reads a time as the server sends it, a string of Unix
// seconds, or as a JSON number; absent, null, "" and 0 are 0 (no time).
func parseUnixSeconds(raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || isJSONNull(raw) {
		return 0, nil
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		text = string(raw)
	}
	if text == "" {
		return 0, nil
	}
	seconds, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, err
	}
	if seconds < 0 {
		return 0, fmt.Errorf("negative time %d", seconds)
	}
	return seconds, nil
}

// withDefaultEnd gives a lock the server named without an end the default
// end, counted from now.
func withDefaultEnd(state TimelockState, now time.Time) TimelockState {
	if state.Active && state.Ends.IsZero() {
		state.Ends = now.Add(timelockDefaultEnd)
	}
	return state
}

// patternOverruled reports whether a fresh word of the server stands
// against the pattern: the server answered the query or notified within
// the query interval, and the last query did not fail. The pattern infers
// a lock from refused first contacts, which the contacts' own settings can
// cause too; the server knows.
func (c *Core) patternOverruled(acc *accountState) bool {
	current := acc.timelock.Load()
	if current == nil || (current.Source != TimelockFromQuery && current.Source != TimelockFromNotification) {
		return false
	}
	acc.watch.mu.Lock()
	failed := acc.watch.query.failed
	acc.watch.mu.Unlock()
	return !failed && c.now().Sub(current.Updated) < acc.timelockInterval()
}
