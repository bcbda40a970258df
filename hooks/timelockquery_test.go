package hooks

import (
	"errors"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
)

// TestParseTimelockReply: the answers the server is known to give, and the
// ones the plugin must not read as "no lock".
func TestParseTimelockReply(t *testing.T) {
	cases := []struct {
		name     string
		data     string
		want     TimelockState
		problem  bool
		malforms bool
	}{
		{"active", `{"xwa2_fetch_account_reachout_timelock":{"is_active":true,"time_enforcement_ends":"1767225600","enforcement_type":"DEFAULT"}}`,
			TimelockState{Active: true, Ends: time.Unix(1767225600, 0), Enforcement: "DEFAULT"}, false, false},
		{"open enforcement type", `{"xwa2_fetch_account_reachout_timelock":{"is_active":true,"time_enforcement_ends":"1767225600","enforcement_type":"RESTRICT_ALL_COMPANIONS"}}`,
			TimelockState{Active: true, Ends: time.Unix(1767225600, 0), Enforcement: "RESTRICT_ALL_COMPANIONS"}, false, false},
		{"end as a number", `{"xwa2_fetch_account_reachout_timelock":{"is_active":true,"time_enforcement_ends":1767225600}}`,
			TimelockState{Active: true, Ends: time.Unix(1767225600, 0)}, false, false},
		{"inactive, end 0", `{"xwa2_fetch_account_reachout_timelock":{"is_active":false,"time_enforcement_ends":"0"}}`,
			TimelockState{}, false, false},
		{"active, no end", `{"xwa2_fetch_account_reachout_timelock":{"is_active":true}}`,
			TimelockState{Active: true}, false, false},
		{"active, null end", `{"xwa2_fetch_account_reachout_timelock":{"is_active":true,"time_enforcement_ends":null}}`,
			TimelockState{Active: true}, false, false},
		{"active, garbled end", `{"xwa2_fetch_account_reachout_timelock":{"is_active":true,"time_enforcement_ends":"soon"}}`,
			TimelockState{Active: true}, true, false},
		{"active, negative end", `{"xwa2_fetch_account_reachout_timelock":{"is_active":true,"time_enforcement_ends":"-5"}}`,
			TimelockState{Active: true}, true, false},
		{"no is_active", `{"xwa2_fetch_account_reachout_timelock":{"enforcement_type":"DEFAULT"}}`, TimelockState{}, false, true},
		{"is_active not a bool", `{"xwa2_fetch_account_reachout_timelock":{"is_active":"true"}}`, TimelockState{}, false, true},
		{"null object", `{"xwa2_fetch_account_reachout_timelock":null}`, TimelockState{}, false, true},
		{"other field", `{"xwa2_message_capping_info":{}}`, TimelockState{}, false, true},
		{"null data", `null`, TimelockState{}, false, true},
		{"not JSON", `<html>`, TimelockState{}, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, problem, err := parseTimelockReply([]byte(tc.data))
			if tc.malforms {
				if !errors.Is(err, errTimelockReply) {
					t.Fatalf("err %v, want errTimelockReply", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (problem != nil) != tc.problem {
				t.Fatalf("problem %v, want one: %v", problem, tc.problem)
			}
			if got.Active != tc.want.Active || !got.Ends.Equal(tc.want.Ends) || got.Enforcement != tc.want.Enforcement {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestWithDefaultEnd: only an active lock without an end gets one, a
// minute from now.
func TestWithDefaultEnd(t *testing.T) {
	now := time.Unix(1767225600, 0)
	if got := withDefaultEnd(TimelockState{Active: true}, now); !got.Ends.Equal(now.Add(time.Minute)) {
		t.Fatalf("active without end: %v", got.Ends)
	}
	ends := now.Add(time.Hour)
	if got := withDefaultEnd(TimelockState{Active: true, Ends: ends}, now); !got.Ends.Equal(ends) {
		t.Fatalf("active with an end: %v", got.Ends)
	}
	if got := withDefaultEnd(TimelockState{}, now); !got.Ends.IsZero() {
		t.Fatalf("inactive: %v", got.Ends)
	}
}

// TestGuardable: the guard looks at sends without a valid tctoken, and at
// nothing else.
func TestGuardable(t *testing.T) {
	for cause, want := range map[Cause]bool{
		CauseCSTokenNoTCToken: true, CauseCSTokenExpired: true, CauseCSTokenOff: true, CauseNoSalt: true, CauseNoLID: true,
		CauseValidTCToken: false, CauseCallerToken: false, CausePeerMessage: false, CauseIneligible: false, CauseCSTokenTCTokenOff: false,
	} {
		if got := guardable(Decision{Cause: cause}, whatsmeow.SendRequestExtra{}); got != want {
			t.Errorf("%s: guardable %v, want %v", cause, got, want)
		}
	}
}
