package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tctoken/tctoken/sqlstore"
)

// The new-chat cap ("message capping") is the server's limit on how many
// new one-on-one chats the account may start in a cycle. It is not the
// reach-out timelock: an account can be capped without a timelock, and the
// other way round. WhatsApp Web asks for it with a MEX query when the
// account's AB props enable it, keeps the answer, and refreshes it when a
// TTL (another prop) has passed or the server pushes a new state.
//
// The push is a mex notification (op_name MessageCappingInfoNotification,
// payload key xwa2_notify_new_chat_messages_capping_info_update). Neither
// whatsmeow the plugin supports hands it to anyone: both parse mex
// notifications against a fixed list and drop the rest, and neither has a
// hook for raw nodes. The plugin therefore learns a pushed change at its
// next fetch: every connect, every TTL, and RefreshNewChatCap.

// Query ids of WhatsApp Web's WAWebMexFetchNewChatMessageCappingInfoJobQuery.
// A persisted query's id names one version of the document, and WhatsApp
// rotates it when the document changes: the README tells the history.
const (
	NewChatCapQueryID       = "27910975521856601"
	NewChatCapQueryIDLegacy = "24503548349331633"
)

// newChatCapThreadType is the only capping surface WhatsApp Web asks about.
const newChatCapThreadType = "INDIVIDUAL_NEW_CHAT_THREAD"

// NewChatCapFromQuery is NewChatCapState.Source for a state the plugin
// fetched. The schema also admits "notification", for the day a whatsmeow
// hands the push over.
const NewChatCapFromQuery = "query"

// CapStatus is the server's capping_status. It is an open set: a value the
// plugin does not know is kept as sent.
type CapStatus string

// The capping statuses WhatsApp Web knows.
const (
	CapNone          CapStatus = "NONE"
	CapFirstWarning  CapStatus = "FIRST_WARNING"
	CapSecondWarning CapStatus = "SECOND_WARNING"
	CapCapped        CapStatus = "CAPPED"
)

// NewChatCapState is what the plugin knows of the account's new-chat cap.
// The zero value means nothing was ever received.
type NewChatCapState struct {
	// Status is the server's capping_status; "" when never received.
	Status CapStatus `json:"status,omitempty"`
	// Limit is total_quota: the new chats allowed per cycle. LimitKnown is
	// false when the server did not send it; Limit is then the AB prop's
	// limit, if any.
	Limit      int64 `json:"limit"`
	LimitKnown bool  `json:"limit_known"`
	// Used is used_quota, when the server says (UsedKnown).
	Used      int64 `json:"used"`
	UsedKnown bool  `json:"used_known"`
	// CycleStart and CycleEnd bound the current cycle; zero when absent.
	// WhatsApp Web treats the cap as lifted once CycleEnd has passed.
	CycleStart time.Time `json:"cycle_start,omitzero"`
	CycleEnd   time.Time `json:"cycle_end,omitzero"`
	// ServerSent is the server's clock when it answered.
	ServerSent time.Time `json:"server_sent,omitzero"`
	// OTEStatus (the one-time extension) and MVStatus (Meta Verified) are
	// kept as sent.
	OTEStatus string `json:"ote_status,omitempty"`
	MVStatus  string `json:"mv_status,omitempty"`
	// Source is NewChatCapFromQuery.
	Source string `json:"source,omitempty"`
	// Fetched is when the plugin received it.
	Fetched time.Time `json:"fetched,omitzero"`
}

// Known reports whether the server ever told the plugin anything.
func (s NewChatCapState) Known() bool { return s.Status != "" }

// Capped reports whether the server's last word was CAPPED.
func (s NewChatCapState) Capped() bool { return s.Status == CapCapped }

// InForce reports whether the cap applies at now: CAPPED, and the cycle it
// was reported for has not ended.
func (s NewChatCapState) InForce(now time.Time) bool {
	return s.Capped() && (s.CycleEnd.IsZero() || now.Before(s.CycleEnd))
}

// Remaining is how many new chats are left in the cycle, when both the
// limit and the count are known.
func (s NewChatCapState) Remaining() (int64, bool) {
	if !s.LimitKnown || !s.UsedKnown {
		return 0, false
	}
	return max(s.Limit-s.Used, 0), true
}

// sameAs compares what the server said, not when it was received: a fetch
// that brings the same answer is no change.
func (s NewChatCapState) sameAs(o NewChatCapState) bool {
	return s.Status == o.Status && s.Limit == o.Limit && s.LimitKnown == o.LimitKnown && s.Used == o.Used &&
		s.UsedKnown == o.UsedKnown && s.CycleStart.Equal(o.CycleStart) && s.CycleEnd.Equal(o.CycleEnd) &&
		s.OTEStatus == o.OTEStatus && s.MVStatus == o.MVStatus
}

// NewChatCapChanged is dispatched through whatsmeow's event handlers when
// what the server says of the new-chat cap changed. Previous is the zero
// state the first time.
type NewChatCapChanged struct {
	Previous NewChatCapState
	State    NewChatCapState
}

// AB props of the new-chat cap (names as in WhatsApp Web).
const (
	PropNewChatCapEnabled      = 20865 // wa_individual_new_chat_msg_capping_enabled
	PropNewChatCapLimit        = 17845 // wa_individual_new_chat_msg_capping_limit
	PropNewChatCapFetchTTL     = 20649 // wa_individual_new_chat_msg_capping_fetch_ttl_seconds
	PropNewChatCapFirstWarning = 18967 // first-warning threshold, percent of the limit
)

const (
	newChatCapTTLDefault          = time.Hour
	newChatCapFirstWarningDefault = 50
)

// NewChatCapPolicy is what the AB props say of the new-chat cap.
type NewChatCapPolicy struct {
	// Enabled: the account is subject to the cap, and the plugin fetches it.
	Enabled bool `json:"enabled"`
	// Limit is the prop's limit (0 when unset); the server's total_quota
	// takes precedence.
	Limit int64 `json:"limit"`
	// FetchTTL is how long a fetched state is kept before the next fetch;
	// in JSON, fetch_ttl_seconds.
	FetchTTL time.Duration `json:"-"`
	// FirstWarningPercent is the share of the limit at which WhatsApp warns
	// first.
	FirstWarningPercent int64 `json:"first_warning_percent"`
}

// newChatCapPolicyJSON is NewChatCapPolicy with the TTL in seconds, as
// the props and the rest of the policy count time.
type newChatCapPolicyJSON struct {
	Enabled             bool  `json:"enabled"`
	Limit               int64 `json:"limit"`
	FetchTTLSeconds     int64 `json:"fetch_ttl_seconds"`
	FirstWarningPercent int64 `json:"first_warning_percent"`
}

// MarshalJSON writes the TTL in seconds.
func (p NewChatCapPolicy) MarshalJSON() ([]byte, error) {
	return json.Marshal(newChatCapPolicyJSON{p.Enabled, p.Limit, int64(p.FetchTTL / time.Second), p.FirstWarningPercent})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (p *NewChatCapPolicy) UnmarshalJSON(data []byte) error {
	var j newChatCapPolicyJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*p = NewChatCapPolicy{Enabled: j.Enabled, Limit: j.Limit, FetchTTL: time.Duration(j.FetchTTLSeconds) * time.Second, FirstWarningPercent: j.FirstWarningPercent}
	return nil
}

// newChatCapPolicy is the cap's policy from its props' values (ComputePolicy
// reads them; 0 where a prop is absent). The TTL is clamped like the props
// refresh: a tiny one would query on every tick, a huge one would freeze
// the state.
func newChatCapPolicy(enabled bool, limit, ttlSeconds, firstWarning int64) NewChatCapPolicy {
	p := NewChatCapPolicy{Enabled: enabled, Limit: max(limit, 0), FetchTTL: newChatCapTTLDefault, FirstWarningPercent: newChatCapFirstWarningDefault}
	if ttlSeconds > 0 {
		p.FetchTTL = propsRefreshInterval(ttlSeconds)
	}
	if firstWarning > 0 && firstWarning <= 100 {
		p.FirstWarningPercent = firstWarning
	}
	return p
}

// ErrNewChatCapQuery means the new-chat cap query failed: no reply, an
// error reply, or an answer without the expected shape.
var ErrNewChatCapQuery = errors.New("new-chat cap query failed")

// ErrNewChatCapDisabled means the AB props do not enable the new-chat cap
// for this account, so the plugin does not ask.
var ErrNewChatCapDisabled = errors.New("new-chat cap not enabled by the AB props")

// newChatCapping is the Core's side of the cap: which query ids to send.
type newChatCapping struct {
	// capQueryIDs are tried in order until one is answered; a bridge's
	// configured id stands alone.
	capQueryIDs []string
	// capWorking is the id the server answered last, tried first.
	capWorking atomic.Pointer[string]
}

// accountCap is one account's cap state.
type accountCap struct {
	state atomic.Pointer[NewChatCapState]
	// attempted is the last fetch attempt (unix seconds), whatever its
	// outcome: the TTL counts from it, so a failing query is not repeated
	// more often than a working one.
	attempted atomic.Int64
	// mu makes one fetch at a time, and orders a fetch's state with the
	// event it dispatches.
	mu sync.Mutex
}

// capQueryIDsFor is the order of ids for a bridge's configuration.
func capQueryIDsFor(configured string) []string {
	if configured = strings.TrimSpace(configured); configured != "" {
		return []string{configured}
	}
	return []string{NewChatCapQueryID, NewChatCapQueryIDLegacy}
}

// NewChatCapFromStored converts what sqlstore holds: the running plugin at
// bind, and readers without a Core (the inspector).
func NewChatCapFromStored(nc *sqlstore.NewChatCap) NewChatCapState {
	if nc == nil {
		return NewChatCapState{}
	}
	return NewChatCapState{
		Status: CapStatus(nc.Status), Limit: nc.Total, LimitKnown: nc.TotalKnown, Used: nc.Used, UsedKnown: nc.UsedKnown,
		CycleStart: unixOrZero(nc.CycleStart), CycleEnd: unixOrZero(nc.CycleEnd), ServerSent: unixOrZero(nc.ServerSent),
		OTEStatus: nc.OTEStatus, MVStatus: nc.MVStatus, Source: nc.Source, Fetched: unixOrZero(nc.FetchedAt),
	}
}

func newChatCapToStored(s NewChatCapState) sqlstore.NewChatCap {
	return sqlstore.NewChatCap{
		Status: string(s.Status), Total: s.Limit, TotalKnown: s.LimitKnown, Used: s.Used, UsedKnown: s.UsedKnown,
		CycleStart: zeroOrUnix(s.CycleStart), CycleEnd: zeroOrUnix(s.CycleEnd), ServerSent: zeroOrUnix(s.ServerSent),
		OTEStatus: s.OTEStatus, MVStatus: s.MVStatus, Source: s.Source, FetchedAt: zeroOrUnix(s.Fetched),
	}
}

// loadNewChatCap reads the stored cap at bind. A failed read costs only the
// state shown until the next fetch, so it does not fail the bind.
func (c *Core) loadNewChatCap(ctx context.Context, acc *accountState) {
	stored, err := acc.store.GetNewChatCap(ctx)
	if err != nil {
		c.metrics.dbError("get_new_chat_cap")
		c.log.Warn().Err(err).Msg("Failed to load the stored new-chat cap; it is fetched again at the next connect")
		return
	}
	state := NewChatCapFromStored(stored)
	acc.newChatCap.state.Store(&state)
	if stored != nil {
		acc.newChatCap.attempted.Store(stored.FetchedAt)
	}
	c.metrics.newChatCap(string(state.Status))
}

// NewChatCap is the new-chat cap as last received for the bound account.
func (c *Core) NewChatCap() NewChatCapState {
	if acc := c.account.Load(); acc != nil {
		if s := acc.newChatCap.state.Load(); s != nil {
			return *s
		}
	}
	return NewChatCapState{}
}

// newChatCapLoop runs for one connection, beside connectedLoop: it fetches
// the cap now if due, then again whenever the TTL passes, until the
// connection ends. Its own goroutine, so that a slow query never delays
// pruning or the props.
func (c *Core) newChatCapLoop(ctx context.Context, gen uint64) {
	c.fetchNewChatCapIfDue(ctx, "connect")
	c.everyTickWhileConnected(ctx, gen, func() { c.fetchNewChatCapIfDue(ctx, "ttl") })
}

// fetchNewChatCapIfDue fetches when the props enable the cap and the TTL
// since the last attempt has passed. Failures are logged, never returned:
// nothing waits on this.
func (c *Core) fetchNewChatCapIfDue(ctx context.Context, trigger string) {
	acc := c.account.Load()
	if acc == nil {
		return
	}
	policy := acc.policy.Load().NewChatCap
	if !policy.Enabled {
		if trigger == "connect" {
			c.log.Debug().Msg("New-chat cap not enabled by the AB props; not fetching it")
		}
		return
	}
	last := acc.newChatCap.attempted.Load()
	if next := time.Unix(last, 0).Add(policy.FetchTTL); last > 0 && c.now().Before(next) {
		if trigger == "connect" {
			c.log.Debug().Time("next", next).Msg("New-chat cap fetched within its TTL; not fetching it yet")
		}
		return
	}
	if _, err := c.fetchNewChatCap(ctx, acc, trigger); err != nil {
		c.warnOnce("new-chat-cap", err, "Failed to fetch the new-chat cap; keeping the last known state")
		return
	}
	c.clearWarned("new-chat-cap")
}

// RefreshNewChatCap fetches the cap now, whatever the TTL: for a bridge
// that has a reason to think it changed (a refused first contact).
func (c *Core) RefreshNewChatCap(ctx context.Context) (NewChatCapState, error) {
	acc, err := c.acct(ctx)
	if err != nil {
		return NewChatCapState{}, fmt.Errorf("tctoken: refresh the new-chat cap: %w", err)
	}
	if !acc.policy.Load().NewChatCap.Enabled {
		return c.NewChatCap(), fmt.Errorf("tctoken: refresh the new-chat cap: %w", ErrNewChatCapDisabled)
	}
	state, err := c.fetchNewChatCap(ctx, acc, "refresh")
	if err != nil {
		return c.NewChatCap(), fmt.Errorf("tctoken: refresh the new-chat cap: %w", err)
	}
	return state, nil
}

// fetchNewChatCap sends the query and records the answer. With the default
// ids, an id the server rejects makes the next one tried (WhatsApp rotates
// them); the one answered is tried first from then on.
func (c *Core) fetchNewChatCap(ctx context.Context, acc *accountState, trigger string) (NewChatCapState, error) {
	acc.newChatCap.mu.Lock()
	defer acc.newChatCap.mu.Unlock()
	acc.newChatCap.attempted.Store(c.nowUnix())
	var errs []error
	for _, id := range c.capQueryOrder() {
		state, err := c.queryNewChatCap(ctx, id, acc.policy.Load().NewChatCap)
		if err == nil {
			if len(errs) > 0 {
				c.log.Info().Str("query_id", id).Errs("rejected", errs).Msg("The server answered the new-chat cap query under another query id; using it from now on")
			}
			c.capWorking.Store(&id)
			c.setNewChatCap(ctx, acc, state, trigger)
			return state, nil
		}
		errs = append(errs, err)
		var refusal *mexRefusal
		if !errors.As(err, &refusal) {
			// Not the server refusing this id (the connection, a bad
			// answer): another id would fare no better.
			break
		}
	}
	return NewChatCapState{}, errors.Join(errs...)
}

func (c *Core) capQueryOrder() []string {
	working := c.capWorking.Load()
	if working == nil || len(c.capQueryIDs) < 2 || *working == c.capQueryIDs[0] {
		return c.capQueryIDs
	}
	order := []string{*working}
	for _, id := range c.capQueryIDs {
		if id != *working {
			order = append(order, id)
		}
	}
	return order
}

// queryNewChatCap sends the query under one id and parses its answer.
func (c *Core) queryNewChatCap(ctx context.Context, queryID string, policy NewChatCapPolicy) (NewChatCapState, error) {
	data, err := c.queryMex(ctx, queryID, map[string]any{"input": map[string]any{"type": newChatCapThreadType}})
	var refusal *mexRefusal
	if errors.As(err, &refusal) && refusal.GraphQL && hasCapInfo(refusal.Data) {
		// GraphQL errors beside the capping info: the info is read, and
		// the errors concern something else.
		data, err = refusal.Data, nil
	}
	if err != nil {
		return NewChatCapState{}, fmt.Errorf("%w: %w", ErrNewChatCapQuery, err)
	}
	state, err := parseNewChatCapReply(data)
	if err != nil {
		return NewChatCapState{}, fmt.Errorf("%w: mex query %s: %w", ErrNewChatCapQuery, queryID, err)
	}
	if !state.LimitKnown && policy.Limit > 0 {
		state.Limit = policy.Limit
	}
	state.Source = NewChatCapFromQuery
	state.Fetched = c.now()
	return state, nil
}

// newChatCapField is where the query's data holds the capping info.
const newChatCapField = "xwa2_message_capping_info"

// errMalformedCapReply: the answer was not the expected JSON.
var errMalformedCapReply = errors.New("malformed new-chat cap answer")

// parseNewChatCapReply reads the "data" of the query's answer,
//
//	{"xwa2_message_capping_info":{…}}
func parseNewChatCapReply(data json.RawMessage) (NewChatCapState, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return NewChatCapState{}, fmt.Errorf("%w: %w", errMalformedCapReply, err)
	}
	info, ok := fields[newChatCapField]
	if !ok {
		return NewChatCapState{}, fmt.Errorf("%w: no %s in the data", errMalformedCapReply, newChatCapField)
	}
	return parseCapInfo(info)
}

// hasCapInfo reports whether data holds capping info that is not null.
func hasCapInfo(data json.RawMessage) bool {
	var fields map[string]json.RawMessage
	if json.Unmarshal(data, &fields) != nil {
		return false
	}
	info, ok := fields[newChatCapField]
	return ok && !isJSONNull(info)
}

// parseCapInfo reads the object the query and the push share. The quota
// and timestamp scalars come as strings or as numbers (WhatsApp Web
// converts both); a null or non-object is an error, as WhatsApp Web fails
// the fetch on it, not a state with every field absent.
func parseCapInfo(raw json.RawMessage) (NewChatCapState, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return NewChatCapState{}, fmt.Errorf("%w: the capping info is %s, not an object", errMalformedCapReply, describeJSON(raw))
	}
	var s NewChatCapState
	var err error
	status, _, err := capString(fields, "capping_status")
	if err != nil {
		return NewChatCapState{}, err
	}
	if status == "" {
		// WhatsApp Web reads an absent status as NONE.
		status = string(CapNone)
	}
	s.Status = CapStatus(status)
	if s.OTEStatus, _, err = capString(fields, "ote_status"); err != nil {
		return NewChatCapState{}, err
	}
	if s.MVStatus, _, err = capString(fields, "mv_status"); err != nil {
		return NewChatCapState{}, err
	}
	if s.Limit, s.LimitKnown, err = capNumber(fields, "total_quota"); err != nil {
		return NewChatCapState{}, err
	}
	if s.Used, s.UsedKnown, err = capNumber(fields, "used_quota"); err != nil {
		return NewChatCapState{}, err
	}
	for _, ts := range []struct {
		key string
		to  *time.Time
	}{{"cycle_start_timestamp", &s.CycleStart}, {"cycle_end_timestamp", &s.CycleEnd}, {"server_sent_timestamp", &s.ServerSent}} {
		sec, known, err := capNumber(fields, ts.key)
		if err != nil {
			return NewChatCapState{}, err
		}
		if known {
			*ts.to = unixOrZero(sec)
		}
	}
	// WhatsApp Web clamps the count to the limit.
	if s.LimitKnown && s.UsedKnown && s.Limit >= 0 && s.Used > s.Limit {
		s.Used = s.Limit
	}
	return s, nil
}

func capString(fields map[string]json.RawMessage, key string) (string, bool, error) {
	raw, ok := fields[key]
	if !ok || isJSONNull(raw) {
		return "", false, nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", false, fmt.Errorf("%w: %s is %s, not a string", errMalformedCapReply, key, describeJSON(raw))
	}
	return v, true, nil
}

func capNumber(fields map[string]json.RawMessage, key string) (int64, bool, error) {
	raw, ok := fields[key]
	if !ok || isJSONNull(raw) {
		return 0, false, nil
	}
	text := string(bytes.TrimSpace(raw))
	if unquoted, err := strconv.Unquote(text); err == nil {
		text = unquoted
	}
	n, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
	if err != nil {
		if f, ferr := strconv.ParseFloat(text, 64); ferr == nil && f == float64(int64(f)) {
			return int64(f), true, nil
		}
		return 0, false, fmt.Errorf("%w: %s is %s, not a number", errMalformedCapReply, key, describeJSON(raw))
	}
	return n, true, nil
}

func isJSONNull(raw json.RawMessage) bool {
	return len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// describeJSON names a value for a log line without quoting all of it.
func describeJSON(raw json.RawMessage) string {
	const limit = 40
	text := string(bytes.TrimSpace(raw))
	if len(text) > limit {
		text = text[:limit] + "…"
	}
	return strconv.Quote(text)
}

// setNewChatCap records a received state in memory and in the database,
// and tells the bridge when what the server says changed.
func (c *Core) setNewChatCap(ctx context.Context, acc *accountState, state NewChatCapState, trigger string) {
	var previous NewChatCapState
	if p := acc.newChatCap.state.Load(); p != nil {
		previous = *p
	}
	acc.newChatCap.state.Store(&state)
	if err := acc.store.PutNewChatCap(ctx, newChatCapToStored(state)); err != nil {
		c.metrics.dbError("put_new_chat_cap")
		c.log.Warn().Err(err).Msg("Failed to record the new-chat cap; it holds for this session only")
	}
	if state.sameAs(previous) {
		c.log.Debug().Str("status", string(state.Status)).Str("trigger", trigger).Msg("New-chat cap unchanged")
		return
	}
	c.metrics.newChatCap(string(state.Status))
	ev := c.log.Info()
	if state.Status != CapNone {
		ev = c.log.Warn()
	}
	ev.Str("status", string(state.Status)).Str("previous", string(previous.Status)).Int64("limit", state.Limit).
		Bool("used_known", state.UsedKnown).Int64("used", state.Used).Time("cycle_end", state.CycleEnd).
		Str("trigger", trigger).Msg("New-chat cap changed")
	c.dispatch(&NewChatCapChanged{Previous: previous, State: state})
}
