package hooks

import (
	"fmt"
	"strconv"
	"strings"

	waBinary "go.mau.fi/whatsmeow/binary"
)

// AB prop config codes the plugin obeys. The profile-picture (9666) and
// group (11261, 11262) gates are not among them: whatsmeow reads tokens for
// those through the same store call as for messages, so the plugin cannot
// tell those reads apart.
const (
	PropReceiverDuration = 865
	PropReceiverBuckets  = 909
	PropSenderDuration   = 996
	PropSenderBuckets    = 997
	PropTCTokenOn1to1    = 10518
	PropNCTSend          = 24941
	PropIssueToLID       = 14303
)

// KnownProps lists the codes the plugin keeps; others in a reply are dropped.
var KnownProps = []int{
	PropReceiverDuration, PropReceiverBuckets, PropSenderDuration, PropSenderBuckets,
	PropTCTokenOn1to1, PropNCTSend, PropIssueToLID,
}

func isKnownProp(code int) bool {
	for _, known := range KnownProps {
		if known == code {
			return true
		}
	}
	return false
}

// PropsReply is a parsed answer to an abt IQ.
type PropsReply struct {
	Hash      string
	RefreshID string
	Refresh   int64 // seconds until the next fetch
	Delta     bool  // merge into the cache instead of replacing it
	Values    map[int]string
}

// BuildPropsQuery builds the <props> child of an abt get IQ. The cached hash
// lets the server answer with only what changed.
func BuildPropsQuery(hash, refreshID string) waBinary.Node {
	attrs := waBinary.Attrs{"protocol": "1"}
	if hash != "" {
		attrs["hash"] = hash
	}
	if refreshID != "" {
		attrs["refresh_id"] = refreshID
	}
	return waBinary.Node{Tag: "props", Attrs: attrs}
}

// ParsePropsReply reads the reply to an abt IQ, keeping only KnownProps.
// Sampling entries (event_code) are ignored.
func ParsePropsReply(node *waBinary.Node) (*PropsReply, error) {
	if err := CheckIQResult(node); err != nil {
		return nil, err
	}
	props, ok := node.GetOptionalChildByTag("props")
	if !ok {
		return nil, fmt.Errorf("%w: abt result has no <props>", ErrMalformedReply)
	}
	ag := props.AttrGetter()
	reply := &PropsReply{
		Hash:      ag.OptionalString("hash"),
		RefreshID: ag.OptionalString("refresh_id"),
		Delta:     ParsePropBool(ag.OptionalString("delta_update"), false),
		Values:    make(map[int]string),
	}
	if refresh := ag.OptionalString("refresh"); refresh != "" {
		seconds, err := strconv.ParseInt(refresh, 10, 64)
		if err != nil || seconds < 0 {
			return nil, fmt.Errorf("%w: bad refresh interval %q", ErrMalformedReply, refresh)
		}
		reply.Refresh = seconds
	}
	for _, child := range props.GetChildren() {
		if child.Tag != "prop" {
			continue
		}
		cag := child.AttrGetter()
		codeStr := cag.OptionalString("config_code")
		if codeStr == "" {
			continue // a sampling entry
		}
		code, err := strconv.Atoi(codeStr)
		if err != nil {
			return nil, fmt.Errorf("%w: bad config_code %q", ErrMalformedReply, codeStr)
		}
		if isKnownProp(code) {
			reply.Values[code] = cag.OptionalString("config_value")
		}
	}
	return reply, nil
}

// ParsePropBool reads an AB prop boolean: 1, true or enabled in any case.
func ParsePropBool(value string, def bool) bool {
	switch strings.ToLower(strings.TrimSpace(value)) {
	case "1", "true", "enabled":
		return true
	case "0", "false", "disabled":
		return false
	}
	return def
}

// ParsePropInt reads an AB prop integer, falling back to def when it does
// not parse.
func ParsePropInt(value string, def int64) int64 {
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
}

// DefaultDefaults are the defaults the plugin ships with.
func DefaultDefaults() Defaults {
	return Defaults{Timing: DefaultTiming(), AttachTCToken: true, AttachCSToken: true, IssueToLID: true}
}

// Policy is the effective configuration at one moment: defaults, overridden
// by server props, overridden by the bridge's local overrides.
type Policy struct {
	Timing        Timing
	AttachTCToken bool
	AttachCSToken bool
	IssueToLID    bool
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
			return ParsePropInt(v, def)
		}
		return def
	}
	boolProp := func(code int, def bool) bool {
		if v, ok := get(code); ok {
			return ParsePropBool(v, def)
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
	}
}
