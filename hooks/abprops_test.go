package hooks

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
)

func TestBuildPropsQuery(t *testing.T) {
	if q := buildPropsQuery("", ""); len(q.Attrs) != 1 || q.Attrs["protocol"] != "1" {
		t.Errorf("first fetch attrs = %v", q.Attrs)
	}
	if q := buildPropsQuery("abc", "7"); q.Attrs["hash"] != "abc" || q.Attrs["refresh_id"] != "7" {
		t.Errorf("cached fetch attrs = %v", q.Attrs)
	}
}

func TestParsePropsReply(t *testing.T) {
	reply := resultIQ(waBinary.Node{Tag: "props", Attrs: waBinary.Attrs{
		"ab_key": "x", "hash": "h1", "refresh": "3600", "refresh_id": "5", "delta_update": "true",
	}, Content: []waBinary.Node{
		{Tag: "prop", Attrs: waBinary.Attrs{"config_code": "865", "config_value": "3600"}},
		{Tag: "prop", Attrs: waBinary.Attrs{"config_code": "24941", "config_value": "false"}},
		{Tag: "prop", Attrs: waBinary.Attrs{"config_code": "1", "config_value": "unrelated"}},
		{Tag: "prop", Attrs: waBinary.Attrs{"event_code": "5", "sampling_weight": "1"}},
	}})
	got, err := parsePropsReply(reply)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash != "h1" || got.Refresh != 3600 || got.RefreshID != "5" || !got.Delta {
		t.Errorf("meta = %+v", got)
	}
	if len(got.Values) != 2 || got.Values[865] != "3600" || got.Values[24941] != "false" {
		t.Errorf("values = %v", got.Values)
	}
}

func TestParsePropsReplyErrors(t *testing.T) {
	if _, err := parsePropsReply(resultIQ()); !errors.Is(err, errMalformedPropsReply) || errors.Is(err, ErrMalformedReply) {
		t.Errorf("no <props>: %v", err)
	}
	_, err := parsePropsReply(&waBinary.Node{Tag: "message"})
	if !errors.Is(err, errMalformedPropsReply) || strings.Contains(err.Error(), "privacy token") {
		t.Errorf("not an iq: %v, want an AB props error that does not mention privacy tokens", err)
	}
}

func TestParsePropsReplySkipsBadParts(t *testing.T) {
	reply := resultIQ(waBinary.Node{Tag: "props", Attrs: waBinary.Attrs{"hash": "h2", "refresh": "soon"}, Content: []waBinary.Node{
		{Tag: "prop", Attrs: waBinary.Attrs{"config_code": "abc", "config_value": "1"}},
		{Tag: "prop", Attrs: waBinary.Attrs{"config_code": "909", "config_value": "lots"}},
		{Tag: "prop", Attrs: waBinary.Attrs{"config_code": "24941", "config_value": "perhaps"}},
		{Tag: "prop", Attrs: waBinary.Attrs{"config_code": "865", "config_value": "3600"}},
		{Tag: "prop", Attrs: waBinary.Attrs{"config_code": "10518", "config_value": "enabled"}},
		{Tag: "prop", Attrs: waBinary.Attrs{"config_code": "996", "config_value": "-9223372036854775808"}},
	}})
	got, err := parsePropsReply(reply)
	if err != nil {
		t.Fatalf("one bad prop must not reject the reply: %v", err)
	}
	want := map[int]string{865: "3600", 10518: "enabled", 996: "-9223372036854775808"}
	if len(got.Values) != len(want) {
		t.Errorf("values = %v, want %v", got.Values, want)
	}
	for code, v := range want {
		if got.Values[code] != v {
			t.Errorf("prop %d = %q, want %q", code, got.Values[code], v)
		}
	}
	if got.Refresh != 0 || got.Hash != "h2" {
		t.Errorf("meta = %+v", got)
	}
	if len(got.Problems) != 4 {
		t.Fatalf("problems = %v, want 4 (refresh, code abc, 909, 24941)", got.Problems)
	}
	for i, part := range []string{"refresh", `"abc"`, "909 (tctoken_num_buckets)", "24941 (wa_nct_token_send_enabled)"} {
		if !strings.Contains(got.Problems[i].Error(), part) || !errors.Is(got.Problems[i], errMalformedPropsReply) {
			t.Errorf("problem %d = %v, want it to name %s", i, got.Problems[i], part)
		}
	}
}

func TestPropsRefreshInterval(t *testing.T) {
	cases := []struct {
		seconds int64
		want    time.Duration
	}{
		{0, 24 * time.Hour},
		{-5, 24 * time.Hour},
		{math.MinInt64, 24 * time.Hour},
		{1, time.Minute},
		{59, time.Minute},
		{60, time.Minute},
		{3600, time.Hour},
		{604800, 7 * 24 * time.Hour},
		{604801, 7 * 24 * time.Hour},
		{math.MaxInt64, 7 * 24 * time.Hour},
	}
	for _, c := range cases {
		if got := propsRefreshInterval(c.seconds); got != c.want {
			t.Errorf("PropsRefreshInterval(%d) = %v, want %v", c.seconds, got, c.want)
		}
	}
}

func TestComputePolicyHostile(t *testing.T) {
	server := map[int]string{
		PropReceiverBuckets:  "9223372036854775807",
		PropReceiverDuration: "-604800",
		PropSenderDuration:   "-1",
		PropSenderBuckets:    "-9223372036854775808",
	}
	p := ComputePolicy(DefaultDefaults(), server, nil)
	want := Timing{ReceiverDuration: DefaultBucketDuration, ReceiverBuckets: 52, SenderDuration: DefaultBucketDuration, SenderBuckets: defaultBucketCount}
	if p.Timing != want {
		t.Errorf("timing = %+v, want %+v", p.Timing, want)
	}
}

func TestParsePropValues(t *testing.T) {
	for _, v := range []string{"1", "true", "TRUE", "Enabled"} {
		if !parsePropBool(v, false) {
			t.Errorf("%q must be true", v)
		}
	}
	for _, v := range []string{"0", "false", "disabled"} {
		if parsePropBool(v, true) {
			t.Errorf("%q must be false", v)
		}
	}
	if !parsePropBool("maybe", true) || parsePropBool("maybe", false) {
		t.Error("an unknown boolean must fall back to the default")
	}
	if parsePropInt("12x", 42) != 42 || parsePropInt(" 7 ", 42) != 7 {
		t.Error("integers fall back to their default when they do not parse")
	}
}

func TestComputePolicy(t *testing.T) {
	d := DefaultDefaults()
	if p := ComputePolicy(d, nil, nil); p.Timing != DefaultTiming() || !p.AttachTCToken || !p.AttachCSToken || !p.IssueToLID {
		t.Errorf("defaults: %+v", p)
	}
	server := map[int]string{PropReceiverDuration: "3600", PropReceiverBuckets: "0", PropTCTokenOn1to1: "0", PropSenderDuration: "99999999999"}
	p := ComputePolicy(d, server, map[int]string{PropTCTokenOn1to1: "1"})
	if p.Timing.ReceiverDuration != 3600 || p.Timing.ReceiverBuckets != defaultBucketCount || p.Timing.SenderDuration != maxBucketDuration {
		t.Errorf("timing: %+v", p.Timing)
	}
	if !p.AttachTCToken {
		t.Error("a local override must win over the server")
	}
	if ComputePolicy(d, server, nil).AttachTCToken {
		t.Error("the server's 0 must turn the tctoken gate off")
	}
}
