package hooks

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
)

// propsState is where the policy comes from before and beside the
// server's AB props: the configured defaults and the local overrides.
type propsState struct {
	defaults  Defaults
	overrides map[int]string
}

// AB prop config codes the plugin obeys. The profile-picture gate (9666) is
// not among them: whatsmeow reads that token through the same store call as
// for messages, and nothing marks the read. The group gates (11261, 11262)
// apply to the calls made through the plugin (groupadd.go), which mark
// their reads; a group call made on the client directly stays whatsmeow's.
const (
	PropReceiverDuration = 865
	PropReceiverBuckets  = 909
	PropSenderDuration   = 996
	PropSenderBuckets    = 997
	PropTCTokenOn1to1    = 10518
	PropNCTSend          = 24941
	PropIssueToLID       = 14303
	PropGroupCreateToken = 11261
	PropGroupAddToken    = 11262
	PropGroupMaxMissing  = 34957
)

// knownProps lists the codes the plugin keeps; others in a reply are dropped.
var knownProps = []int{
	PropReceiverDuration, PropReceiverBuckets, PropSenderDuration, PropSenderBuckets,
	PropTCTokenOn1to1, PropNCTSend, PropIssueToLID,
	PropNewChatCapEnabled, PropNewChatCapLimit, PropNewChatCapFetchTTL, PropNewChatCapFirstWarning,
	PropGroupCreateToken, PropGroupAddToken, PropGroupMaxMissing,
}

func isKnownProp(code int) bool {
	for _, known := range knownProps {
		if known == code {
			return true
		}
	}
	return false
}

// propNames name the known props in log lines and errors.
var propNames = map[int]string{
	PropReceiverDuration:       "tctoken_duration",
	PropReceiverBuckets:        "tctoken_num_buckets",
	PropSenderDuration:         "tctoken_duration_sender",
	PropSenderBuckets:          "tctoken_num_buckets_sender",
	PropTCTokenOn1to1:          "privacy_token_sending_on_all_1_on_1_messages",
	PropNCTSend:                "wa_nct_token_send_enabled",
	PropIssueToLID:             "lid_trusted_token_issue_to_lid",
	PropNewChatCapEnabled:      "wa_individual_new_chat_msg_capping_enabled",
	PropNewChatCapLimit:        "wa_individual_new_chat_msg_capping_limit",
	PropNewChatCapFetchTTL:     "wa_individual_new_chat_msg_capping_fetch_ttl_seconds",
	PropNewChatCapFirstWarning: "new-chat cap first-warning threshold",
	PropGroupCreateToken:       "privacy_token_on_group_create",
	PropGroupAddToken:          "privacy_token_on_group_participant_add",
	PropGroupMaxMissing:        "max missing tokens per group (name unconfirmed)",
}

// integerProps hold integers; the other known props are booleans.
var integerProps = map[int]bool{
	PropReceiverDuration: true, PropReceiverBuckets: true, PropSenderDuration: true, PropSenderBuckets: true,
	PropNewChatCapLimit: true, PropNewChatCapFetchTTL: true, PropNewChatCapFirstWarning: true,
	PropGroupMaxMissing: true,
}

// errMalformedPropsReply means the abt reply, or one of its props, did not
// have the expected shape.
var errMalformedPropsReply = errors.New("malformed AB props reply")

const (
	// minPropsRefresh keeps a tiny refresh from busy-looping.
	minPropsRefresh = time.Minute
	// maxPropsRefresh keeps a huge refresh from overflowing time.Duration
	// and from freezing props for the life of the process.
	maxPropsRefresh = 7 * 24 * time.Hour
	// propsRefreshDefault applies when the server names no usable interval.
	propsRefreshDefault = 24 * time.Hour
)

// propsRefreshInterval turns the server's refresh (seconds) into how long to
// wait: ≤ 0 means the default, otherwise clamped to [MinPropsRefresh,
// MaxPropsRefresh]. The clamp happens in seconds, before the conversion,
// because seconds × time.Second overflows for anything over 292 years.
func propsRefreshInterval(seconds int64) time.Duration {
	switch {
	case seconds <= 0:
		return propsRefreshDefault
	case seconds < int64(minPropsRefresh/time.Second):
		return minPropsRefresh
	case seconds > int64(maxPropsRefresh/time.Second):
		return maxPropsRefresh
	}
	return time.Duration(seconds) * time.Second
}

// propsReply is a parsed answer to an abt IQ.
type propsReply struct {
	Hash      string
	RefreshID string
	Refresh   int64 // seconds until the next fetch, as sent; 0 if absent or bad
	Delta     bool  // merge into the cache instead of replacing it
	Values    map[int]string
	// Problems describe what was skipped (a bad refresh, a prop whose code
	// or value does not parse); the rest of the reply still applies.
	Problems []error
}

// buildPropsQuery builds the <props> child of an abt get IQ. The cached hash
// lets the server answer with only what changed.
func buildPropsQuery(hash, refreshID string) waBinary.Node {
	attrs := waBinary.Attrs{"protocol": "1"}
	if hash != "" {
		attrs["hash"] = hash
	}
	if refreshID != "" {
		attrs["refresh_id"] = refreshID
	}
	return waBinary.Node{Tag: "props", Attrs: attrs}
}

// parsePropsReply reads the reply to an abt IQ, keeping only KnownProps.
// Sampling entries (event_code) are ignored. Only a reply that is not a
// props result at all is an error: one bad attribute or prop is skipped and
// described in Problems, so that it cannot cost the rest of the reply.
func parsePropsReply(node *waBinary.Node) (*propsReply, error) {
	if err := checkIQResult(node, errMalformedPropsReply); err != nil {
		return nil, err
	}
	props, ok := node.GetOptionalChildByTag("props")
	if !ok {
		return nil, fmt.Errorf("%w: abt result has no <props>", errMalformedPropsReply)
	}
	reply := &propsReply{
		Hash:      stringAttr(props.Attrs, "hash"),
		RefreshID: stringAttr(props.Attrs, "refresh_id"),
		Delta:     parsePropBool(stringAttr(props.Attrs, "delta_update"), false),
		Values:    make(map[int]string),
	}
	if refresh := stringAttr(props.Attrs, "refresh"); refresh != "" {
		seconds, err := strconv.ParseInt(refresh, 10, 64)
		if err != nil || seconds < 0 {
			reply.Problems = append(reply.Problems, fmt.Errorf("%w: bad refresh interval %q, using the default", errMalformedPropsReply, refresh))
		} else {
			reply.Refresh = seconds
		}
	}
	for i, child := range props.GetChildren() {
		if child.Tag != "prop" {
			continue
		}
		codeStr := stringAttr(child.Attrs, "config_code")
		if codeStr == "" {
			continue // a sampling entry
		}
		code, err := strconv.Atoi(codeStr)
		if err != nil {
			reply.Problems = append(reply.Problems, fmt.Errorf("%w: prop #%d has a bad config_code %q", errMalformedPropsReply, i+1, codeStr))
			continue
		}
		if !isKnownProp(code) {
			continue
		}
		value := stringAttr(child.Attrs, "config_value")
		if problem := checkPropValue(code, value); problem != nil {
			reply.Problems = append(reply.Problems, problem)
			continue
		}
		reply.Values[code] = value
	}
	return reply, nil
}

// checkPropValue says why a known prop's value is unusable, naming the prop.
func checkPropValue(code int, value string) error {
	trimmed := strings.TrimSpace(value)
	if integerProps[code] {
		if _, err := strconv.ParseInt(trimmed, 10, 64); err != nil {
			return fmt.Errorf("%w: prop %d (%s) has a non-integer value %q", errMalformedPropsReply, code, propNames[code], value)
		}
		return nil
	}
	switch strings.ToLower(trimmed) {
	case "1", "true", "enabled", "0", "false", "disabled":
		return nil
	}
	return fmt.Errorf("%w: prop %d (%s) has a non-boolean value %q", errMalformedPropsReply, code, propNames[code], value)
}

// stringAttr reads an attribute as a string whatever type the decoder gave
// it: a hostile reply may carry a JID or bytes where a number belongs, and
// whatsmeow's AttrGetter does not say which attribute failed.
func stringAttr(attrs waBinary.Attrs, key string) string {
	switch v := attrs[key].(type) {
	case nil:
		return ""
	case string:
		return v
	case []byte:
		return string(v)
	case fmt.Stringer:
		return v.String()
	default:
		return fmt.Sprint(v)
	}
}

// parsePropBool reads an AB prop boolean: 1, true or enabled in any case.
func parsePropBool(value string, def bool) bool {
	switch strings.ToLower(strings.TrimSpace(value)) {
	case "1", "true", "enabled":
		return true
	case "0", "false", "disabled":
		return false
	}
	return def
}

// parsePropInt reads an AB prop integer, falling back to def when it does
// not parse.
func parsePropInt(value string, def int64) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
	if err != nil {
		return def
	}
	return n
}

// Defaults is what the plugin does before the server has sent any props.
type Defaults struct {
	Timing Timing
	// AttachTCToken and AttachCSToken default to true, as upstream whatsmeow
	// does: attaching a valid token is never what makes a send fail, while
	// withholding one before props arrive makes first messages fail with 463.
	AttachTCToken bool
	AttachCSToken bool
	IssueToLID    bool
	// GroupCreateTokens and GroupAddTokens (AB props 11261, 11262) default
	// to off, as the server's defaults are; GroupMaxMissing (34957) to 32.
	GroupCreateTokens bool
	GroupAddTokens    bool
	GroupMaxMissing   int64
}

// defaultGroupMaxMissing is AB prop 34957's default.
const defaultGroupMaxMissing = 32

// DefaultDefaults are the defaults the plugin ships with.
func DefaultDefaults() Defaults {
	return Defaults{Timing: DefaultTiming(), AttachTCToken: true, AttachCSToken: true, IssueToLID: true, GroupMaxMissing: defaultGroupMaxMissing}
}

// Policy is the effective configuration at one moment: defaults, overridden
// by server props, overridden by the bridge's local overrides.
type Policy struct {
	Timing        Timing
	AttachTCToken bool
	AttachCSToken bool
	IssueToLID    bool
	NewChatCap    NewChatCapPolicy
	// GroupCreateTokens and GroupAddTokens gate the <privacy> tokens of the
	// group calls made through the plugin; GroupMaxMissing is how many
	// added participants without a token one such call may carry before
	// the plugin warns (see groupadd.go).
	GroupCreateTokens bool
	GroupAddTokens    bool
	GroupMaxMissing   int64
}

// ComputePolicy merges the three layers. Durations are clamped.
func ComputePolicy(defaults Defaults, server, overrides map[int]string) Policy {
	get := func(code int) (string, bool) {
		if v, ok := overrides[code]; ok {
			return v, true
		}
		v, ok := server[code]
		return v, ok
	}
	intProp := func(code int, def int64) int64 {
		if v, ok := get(code); ok {
			return parsePropInt(v, def)
		}
		return def
	}
	boolProp := func(code int, def bool) bool {
		if v, ok := get(code); ok {
			return parsePropBool(v, def)
		}
		return def
	}
	base := defaults.Timing.Clamped()
	return Policy{
		Timing: Timing{
			ReceiverDuration: intProp(PropReceiverDuration, base.ReceiverDuration),
			ReceiverBuckets:  intProp(PropReceiverBuckets, base.ReceiverBuckets),
			SenderDuration:   intProp(PropSenderDuration, base.SenderDuration),
			SenderBuckets:    intProp(PropSenderBuckets, base.SenderBuckets),
		}.Clamped(),
		AttachTCToken: boolProp(PropTCTokenOn1to1, defaults.AttachTCToken),
		AttachCSToken: boolProp(PropNCTSend, defaults.AttachCSToken),
		IssueToLID:    boolProp(PropIssueToLID, defaults.IssueToLID),
		NewChatCap: newChatCapPolicy(boolProp(PropNewChatCapEnabled, false), intProp(PropNewChatCapLimit, 0),
			intProp(PropNewChatCapFetchTTL, 0), intProp(PropNewChatCapFirstWarning, 0)),

		GroupCreateTokens: boolProp(PropGroupCreateToken, defaults.GroupCreateTokens),
		GroupAddTokens:    boolProp(PropGroupAddToken, defaults.GroupAddTokens),
		GroupMaxMissing:   max(0, intProp(PropGroupMaxMissing, defaults.GroupMaxMissing)),
	}
}
