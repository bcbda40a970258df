package compat

import (
	"strings"
	"testing"
	"time"
)

// unixString stands in for jsontime.UnixString: a struct embedding time.Time.
type unixString struct{ time.Time }

type knownTimelock struct {
	EnforcementType     string
	IsActive            bool
	TimeEnforcementEnds unixString
}

type plainTimeTimelock struct {
	EnforcementType     string
	IsActive            bool
	TimeEnforcementEnds time.Time
}

type activeAsString struct {
	EnforcementType     string
	IsActive            string
	TimeEnforcementEnds unixString
}

type endsAsSeconds struct {
	EnforcementType     string
	IsActive            bool
	TimeEnforcementEnds int64
}

type endsAsNamedStruct struct {
	EnforcementType     string
	IsActive            bool
	TimeEnforcementEnds struct{ At time.Time }
}

type noActive struct {
	EnforcementType     string
	TimeEnforcementEnds unixString
}

// A field whose type changed turns the notification off: the old reader
// read a non-bool IsActive as false (a real timelock recorded inactive) and
// an end it could not read as zero (a timelock that never ends).
func TestTimelockReaderRefusesUnknownShapes(t *testing.T) {
	for _, tc := range []struct {
		evt   any
		field string
	}{
		{&activeAsString{IsActive: "true"}, "IsActive"},
		{&endsAsSeconds{IsActive: true, TimeEnforcementEnds: probeTimelockEnds.Unix()}, "TimeEnforcementEnds"},
		{&endsAsNamedStruct{IsActive: true}, "TimeEnforcementEnds"},
		{&noActive{}, "IsActive"},
		{"a string", "string"},
	} {
		reader, line, problem := detectTimelock([]any{tc.evt})
		if reader != nil || line != Disabled || problem == nil {
			t.Errorf("%T: reader %v, line %q: must be off", tc.evt, reader != nil, line)
			continue
		}
		if !strings.Contains(problem.Found, tc.field) || problem.Feature != "timelock_event" {
			t.Errorf("%T: the warning must name %s: %v", tc.evt, tc.field, problem)
		}
	}
}

func TestTimelockReaderKnownShapes(t *testing.T) {
	probe := []any{
		&knownTimelock{EnforcementType: probeTimelockEnforcement, IsActive: true, TimeEnforcementEnds: unixString{probeTimelockEnds}},
		plainTimeTimelock{EnforcementType: probeTimelockEnforcement, IsActive: true, TimeEnforcementEnds: probeTimelockEnds},
	}
	for _, evt := range probe {
		reader, line, problem := detectTimelock([]any{evt})
		if reader == nil || problem != nil || line == Disabled || line == None {
			t.Fatalf("%T: %q, %v", evt, line, problem)
		}
	}
	reader, _, _ := detectTimelock(probe[:1])
	ends := time.Unix(1800000000, 0)
	got, ok := reader.read(&knownTimelock{EnforcementType: "REACHOUT_TIMELOCK", IsActive: true, TimeEnforcementEnds: unixString{ends}})
	if !ok || !got.Active || !got.Ends.Equal(ends) || got.Enforcement != "REACHOUT_TIMELOCK" {
		t.Fatalf("read %+v, %v", got, ok)
	}
	// The server's "no end" (absent, or "0") is no end, not the epoch.
	if got, _ := reader.read(&knownTimelock{TimeEnforcementEnds: unixString{time.Unix(0, 0)}}); !got.Ends.IsZero() || got.Active {
		t.Fatalf("read %+v", got)
	}
	// Other events, the same type by value, and a nil pointer are not it.
	for _, other := range []any{knownTimelock{IsActive: true}, (*knownTimelock)(nil), &plainTimeTimelock{IsActive: true}, nil} {
		if _, ok := reader.read(other); ok {
			t.Errorf("%T read as the timelock event", other)
		}
	}
}

// The probe must read back what it put in: an event of the right shape
// that carries other values (whatsmeow filling the fields from elsewhere)
// is not used either.
func TestTimelockProbeKnownAnswer(t *testing.T) {
	for _, evt := range []any{
		&knownTimelock{EnforcementType: probeTimelockEnforcement, IsActive: false, TimeEnforcementEnds: unixString{probeTimelockEnds}},
		&knownTimelock{EnforcementType: probeTimelockEnforcement, IsActive: true},
		&knownTimelock{IsActive: true, TimeEnforcementEnds: unixString{probeTimelockEnds}},
	} {
		if reader, line, problem := detectTimelock([]any{evt}); reader != nil || line != Disabled || problem == nil {
			t.Errorf("%+v: reader %v, line %q", evt, reader != nil, line)
		}
	}
	if reader, line, problem := detectTimelock(nil); reader != nil || line != None || problem != nil {
		t.Errorf("no event (whatsmeow 2025-12): %q, %v", line, problem)
	}
	two := &knownTimelock{EnforcementType: probeTimelockEnforcement, IsActive: true, TimeEnforcementEnds: unixString{probeTimelockEnds}}
	if reader, line, _ := detectTimelock([]any{two, two}); reader != nil || line != Disabled {
		t.Errorf("two events for one notification: %q", line)
	}
}

// On this whatsmeow, the probe's event (if any) reads back a real
// notification's values through Features.
func TestTimelockOnThisWhatsmeow(t *testing.T) {
	f := Detect(nil)
	events := probeTimelockEvents()
	if len(events) == 0 {
		if f.Line().TimelockEvent != None {
			t.Fatalf("no event, line %q", f.Line().TimelockEvent)
		}
		return
	}
	got, ok := f.Timelock(events[0])
	if !ok || !got.Active || !got.Ends.Equal(probeTimelockEnds) || got.Enforcement != probeTimelockEnforcement {
		t.Fatalf("read %+v, %v (line %q)", got, ok, f.Line().TimelockEvent)
	}
	if _, ok := f.Timelock(struct{}{}); ok {
		t.Fatal("any other event is not the timelock")
	}
}
