package hooks

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
)

// TestClassify: every decision cause maps to one diagnosis, and a timelock
// in force wins over all of them until its announced end.
func TestClassify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	want := map[Cause]Diagnosis{
		CauseUnknown: DiagnosisUnknown, CausePeerMessage: DiagnosisUnknown, CauseIneligible: DiagnosisUnknown,
		CauseCallerToken: DiagnosisTokenRefused, CauseValidTCToken: DiagnosisTokenRefused,
		CauseCSTokenNoTCToken: DiagnosisNoToken, CauseCSTokenExpired: DiagnosisTokenExpired,
		CauseCSTokenTCTokenOff: DiagnosisGateOff, CauseCSTokenOff: DiagnosisGateOff,
		CauseNoSalt: DiagnosisNoSalt, CauseNoLID: DiagnosisNoLID,
	}
	if len(want) != len(causeNames) {
		t.Fatalf("%d causes classified, %d exist", len(want), len(causeNames))
	}
	for cause, diagnosis := range want {
		if got := classify(Decision{Cause: cause}, TimelockState{}, now); got != diagnosis {
			t.Errorf("%s: %s, want %s", cause, got, diagnosis)
		}
		locked := TimelockState{Active: true, Source: TimelockFromNotification, Ends: now.Add(time.Hour)}
		if got := classify(Decision{Cause: cause}, locked, now); got != DiagnosisTimelock {
			t.Errorf("%s under a timelock: %s", cause, got)
		}
		if got := classify(Decision{Cause: cause}, locked, now.Add(time.Hour)); got != diagnosis {
			t.Errorf("%s after the timelock ended: %s, want %s", cause, got, diagnosis)
		}
	}
}

func TestDiagnosisNamesRoundTrip(t *testing.T) {
	for _, d := range Diagnoses() {
		text, _ := d.MarshalText()
		var back Diagnosis
		if err := back.UnmarshalText(text); err != nil || back != d || d.Hint() == "" {
			t.Errorf("%s: back %s, %v", d, back, err)
		}
	}
}

// TestIs463 matches whatsmeow's own wrapping of the ack error only.
func TestIs463(t *testing.T) {
	for err, want := range map[error]bool{
		fmt.Errorf("%w %d", whatsmeow.ErrServerReturnedError, 463):  true,
		fmt.Errorf("%w %d", whatsmeow.ErrServerReturnedError, 4630): false,
		fmt.Errorf("%w %d", whatsmeow.ErrServerReturnedError, 479):  false,
		errors.New("server returned error 463"):                     false,
	} {
		if is463(err) != want {
			t.Errorf("Is463(%v) = %v", err, !want)
		}
	}
}

// TestTokenExpiry: the known answers of the bucket rule.
func TestTokenExpiry(t *testing.T) {
	const d = 604800
	timing := DefaultTiming()
	if got := timing.TokenExpiry(7 * d); got != 11*d {
		t.Fatalf("expiry of 7D = %d, want 11D", got)
	}
	if timing.ReceivedTokenValid(7*d, 11*d) || !timing.ReceivedTokenValid(7*d, 11*d-1) {
		t.Fatal("the expiry must be the first instant the token is invalid")
	}
}
