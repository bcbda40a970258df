package hooks

import (
	"errors"
	"testing"

	waBinary "go.mau.fi/whatsmeow/binary"
)

func TestBuildPropsQuery(t *testing.T) {
	if q := BuildPropsQuery("", ""); len(q.Attrs) != 1 || q.Attrs["protocol"] != "1" {
		t.Errorf("first fetch attrs = %v", q.Attrs)
	}
	if q := BuildPropsQuery("abc", "7"); q.Attrs["hash"] != "abc" || q.Attrs["refresh_id"] != "7" {
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
	got, err := ParsePropsReply(reply)
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
	if _, err := ParsePropsReply(resultIQ()); !errors.Is(err, ErrMalformedReply) {
		t.Errorf("no <props>: %v", err)
	}
	bad := resultIQ(waBinary.Node{Tag: "props", Attrs: waBinary.Attrs{"refresh": "-1"}})
	if _, err := ParsePropsReply(bad); !errors.Is(err, ErrMalformedReply) {
		t.Errorf("negative refresh: %v", err)
	}
}

func TestParsePropValues(t *testing.T) {
	for _, v := range []string{"1", "true", "TRUE", "Enabled"} {
		if !ParsePropBool(v, false) {
			t.Errorf("%q must be true", v)
		}
	}
	for _, v := range []string{"0", "false", "disabled"} {
		if ParsePropBool(v, true) {
			t.Errorf("%q must be false", v)
		}
	}
	if !ParsePropBool("maybe", true) || ParsePropBool("maybe", false) {
		t.Error("an unknown boolean must fall back to the default")
	}
	if ParsePropInt("12x", 42) != 42 || ParsePropInt(" 7 ", 42) != 7 {
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
	if p.Timing.ReceiverDuration != 3600 || p.Timing.ReceiverBuckets != DefaultBucketCount || p.Timing.SenderDuration != MaxBucketDuration {
		t.Errorf("timing: %+v", p.Timing)
	}
	if !p.AttachTCToken {
		t.Error("a local override must win over the server")
	}
	if ComputePolicy(d, server, nil).AttachTCToken {
		t.Error("the server's 0 must turn the tctoken gate off")
	}
}
