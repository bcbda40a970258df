package hooks

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestParseNewChatCapReply: the live server's string scalars and the
// numbers some answers carry read the same; absent fields stay absent; an
// unknown status survives; the count is clamped to the limit as WhatsApp
// Web does.
func TestParseNewChatCapReply(t *testing.T) {
	got, err := parseNewChatCapReply(json.RawMessage(`{"xwa2_message_capping_info":{"capping_status":"FIRST_WARNING",
		"ote_status":"ELIGIBLE","mv_status":"NOT_ACTIVE","total_quota":"50","used_quota":"27",
		"cycle_start_timestamp":"1770000000","cycle_end_timestamp":"1772592000","server_sent_timestamp":"1770500000"}}`))
	want := NewChatCapState{Status: CapFirstWarning, OTEStatus: "ELIGIBLE", MVStatus: "NOT_ACTIVE", Limit: 50, LimitKnown: true,
		Used: 27, UsedKnown: true, CycleStart: time.Unix(1770000000, 0), CycleEnd: time.Unix(1772592000, 0), ServerSent: time.Unix(1770500000, 0)}
	if err != nil || !got.sameAs(want) || !got.ServerSent.Equal(want.ServerSent) {
		t.Fatalf("strings: %+v, %v", got, err)
	}
	if left, ok := got.Remaining(); !ok || left != 23 {
		t.Errorf("remaining %d, %v", left, ok)
	}

	got, err = parseNewChatCapReply(json.RawMessage(`{"xwa2_message_capping_info":{"capping_status":"CAPPED","total_quota":50,"used_quota":61,"cycle_end_timestamp":1772592000}}`))
	if err != nil || got.Status != CapCapped || got.Limit != 50 || got.Used != 50 || !got.CycleEnd.Equal(time.Unix(1772592000, 0)) ||
		!got.CycleStart.IsZero() || got.OTEStatus != "" {
		t.Fatalf("numbers: %+v, %v", got, err)
	}
	if !got.InForce(time.Unix(1772591999, 0)) || got.InForce(time.Unix(1772592000, 0)) {
		t.Error("CAPPED applies until the cycle ends, and not after")
	}

	got, err = parseNewChatCapReply(json.RawMessage(`{"xwa2_message_capping_info":{"capping_status":"THIRD_WARNING"}}`))
	if err != nil || got.Status != "THIRD_WARNING" || got.LimitKnown || got.UsedKnown || got.Capped() {
		t.Fatalf("unknown status: %+v, %v", got, err)
	}
	if _, ok := got.Remaining(); ok {
		t.Error("no remaining count without the quotas")
	}
	got, err = parseNewChatCapReply(json.RawMessage(`{"xwa2_message_capping_info":{}}`))
	if err != nil || got.Status != CapNone {
		t.Fatalf("an absent status reads as NONE, as WhatsApp Web does: %+v, %v", got, err)
	}
}

// TestParseNewChatCapReplyRejects: each "data" the plugin cannot use is an
// error that says what was wrong. (The server's refusals never reach the
// parser: queryMex returns them, see TestQueryMex.)
func TestParseNewChatCapReplyRejects(t *testing.T) {
	for _, tc := range []struct {
		data, says string
	}{
		{`{}`, "no xwa2_message_capping_info"},
		{`null`, "no xwa2_message_capping_info"},
		{`["x"]`, "cannot unmarshal array"},
		{`{"xwa2_message_capping_info":null}`, `"null", not an object`},
		{`{"xwa2_message_capping_info":"CAPPED"}`, `"\"CAPPED\"", not an object`},
		{`{"xwa2_message_capping_info":{"capping_status":7}}`, "capping_status is \"7\", not a string"},
		{`{"xwa2_message_capping_info":{"used_quota":"lots"}}`, "used_quota is \"\\\"lots\\\"\", not a number"},
	} {
		_, err := parseNewChatCapReply(json.RawMessage(tc.data))
		if !errors.Is(err, errMalformedCapReply) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want it to say %q", tc.data, err, tc.says)
		}
	}
}

// TestHasCapInfo: GraphQL errors beside capping info that is there and not
// null leave the answer readable; beside anything else they refuse it.
func TestHasCapInfo(t *testing.T) {
	for _, data := range []string{`{"xwa2_message_capping_info":{}}`, `{"other":1,"xwa2_message_capping_info":{"capping_status":"NONE"}}`} {
		if !hasCapInfo(json.RawMessage(data)) {
			t.Errorf("%s: no capping info found", data)
		}
	}
	for _, data := range []string{`{"xwa2_message_capping_info":null}`, `{}`, `null`, ``, `[1]`} {
		if hasCapInfo(json.RawMessage(data)) {
			t.Errorf("%s: capping info found", data)
		}
	}
}

// TestNewChatCapPolicy: the props' defaults (off, 1 h, 50 %) and their
// bounds.
func TestNewChatCapPolicy(t *testing.T) {
	def := ComputePolicy(DefaultDefaults(), nil, nil).NewChatCap
	if def != (NewChatCapPolicy{FetchTTL: time.Hour, FirstWarningPercent: 50}) {
		t.Errorf("defaults %+v", def)
	}
	p := ComputePolicy(DefaultDefaults(), map[int]string{
		PropNewChatCapEnabled: "true", PropNewChatCapLimit: "100", PropNewChatCapFetchTTL: "5", PropNewChatCapFirstWarning: "80",
	}, nil).NewChatCap
	if p != (NewChatCapPolicy{Enabled: true, Limit: 100, FetchTTL: minPropsRefresh, FirstWarningPercent: 80}) {
		t.Errorf("set %+v", p)
	}
	p = ComputePolicy(DefaultDefaults(), map[int]string{PropNewChatCapFetchTTL: "0", PropNewChatCapFirstWarning: "250", PropNewChatCapLimit: "-3"},
		map[int]string{PropNewChatCapEnabled: "1"}).NewChatCap
	if p != (NewChatCapPolicy{Enabled: true, FetchTTL: time.Hour, FirstWarningPercent: 50}) {
		t.Errorf("out of bounds, enabled by an override: %+v", p)
	}
}

// TestCapQueryOrder: the default tries the current id, then the older
// one, and keeps to the one the server answered; a configured id stands
// alone.
func TestCapQueryOrder(t *testing.T) {
	c := &Core{}
	c.capQueryIDs = capQueryIDsFor("")
	if got := c.capQueryOrder(); len(got) != 2 || got[0] != NewChatCapQueryID || got[1] != NewChatCapQueryIDLegacy {
		t.Errorf("default order %v", got)
	}
	legacy := NewChatCapQueryIDLegacy
	c.capWorking.Store(&legacy)
	if got := c.capQueryOrder(); len(got) != 2 || got[0] != NewChatCapQueryIDLegacy || got[1] != NewChatCapQueryID {
		t.Errorf("after the legacy id answered %v", got)
	}
	c.capQueryIDs = capQueryIDsFor(" 123 ")
	if got := c.capQueryOrder(); len(got) != 1 || got[0] != "123" {
		t.Errorf("configured %v", got)
	}
}
