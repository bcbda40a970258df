package compat

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/store"
	waLog "go.mau.fi/whatsmeow/util/log"
)

// The newer whatsmeow turns the server's reach-out timelock notification (a
// mex notification) into an event, events.NotifyAccountReachoutTimelock;
// whatsmeow 2025-12 parses the same notification and dispatches nothing.
// The type cannot be named in code that builds against both, and Go cannot
// look a type up by name, so the plugin learns it the one exact way: it
// hands whatsmeow's own parser a notification with known values, on a
// client of its own that is never connected and has no other handler, and
// reads back what comes out. A type that does not read back the values it
// was given is never used: a real timelock recorded as inactive, or as
// never ending, would be worse than none.
var (
	probeTimelockEnds        = time.Unix(1767225600, 0) // 2026-01-01, any past second serves
	probeTimelockEnforcement = "tctoken_probe"
)

// Timelock is what the server's timelock notification says.
type Timelock struct {
	Active      bool
	Ends        time.Time // zero if the server named no end
	Enforcement string
}

// probeTimelockEvents returns the events whatsmeow dispatches for a
// timelock notification with the probe's values.
func probeTimelockEvents() []any {
	payload, _ := json.Marshal(map[string]any{"data": map[string]any{"xwa2_notify_account_reachout_timelock": map[string]any{
		"is_active":             true,
		"time_enforcement_ends": strconv.FormatInt(probeTimelockEnds.Unix(), 10),
		"enforcement_type":      probeTimelockEnforcement,
	}}})
	node := &waBinary.Node{
		Tag:   "notification",
		Attrs: waBinary.Attrs{"type": "mex"},
		Content: []waBinary.Node{{
			Tag:     "update",
			Attrs:   waBinary.Attrs{"op_name": "NotificationUserReachoutTimelockUpdate"},
			Content: payload,
		}},
	}
	probe := whatsmeow.NewClient(&store.Device{Log: waLog.Noop}, waLog.Noop)
	var got []any
	probe.AddEventHandler(func(evt any) { got = append(got, evt) })
	//lint:ignore SA1019 whatsmeow's mex parser is reachable only through DangerousInternals; the probe client is never connected.
	probe.DangerousInternals().HandleMexNotification(context.Background(), node)
	return got
}

// detectTimelock checks what the probe dispatched: nothing (whatsmeow
// 2025-12), or one event that reads back the probe's values.
func detectTimelock(dispatched []any) (*timelockReader, string, *Problem) {
	switch len(dispatched) {
	case 0:
		return nil, None, nil
	case 1:
	default:
		types := make([]string, len(dispatched))
		for i, evt := range dispatched {
			types[i] = fmt.Sprintf("%T", evt)
		}
		return nil, Disabled, &Problem{Feature: "timelock_event", Found: fmt.Sprintf("%d events %v for one notification", len(dispatched), types), Want: "one event",
			Effect: timelockOff}
	}
	evt := dispatched[0]
	reader, problem := newTimelockReader(reflect.TypeOf(evt))
	if problem != nil {
		return nil, Disabled, problem
	}
	want := Timelock{Active: true, Ends: probeTimelockEnds, Enforcement: probeTimelockEnforcement}
	if got, _ := reader.read(evt); !got.Ends.Equal(want.Ends) || got.Active != want.Active || got.Enforcement != want.Enforcement {
		return nil, Disabled, &Problem{Feature: "timelock_event", Found: fmt.Sprintf("%T reading back %+v", evt, got), Want: fmt.Sprintf("%+v", want),
			Effect: timelockOff}
	}
	return reader, reader.typ.String(), nil
}

const timelockOff = "the server's timelock notifications are ignored; the plugin infers a timelock from refused first contacts only"

// timelockReader reads one event type, its fields checked once.
type timelockReader struct {
	typ         reflect.Type
	active      []int
	ends        []int
	enforcement []int
}

// newTimelockReader checks an event type against the fields the plugin
// reads: IsActive bool, TimeEnforcementEnds a time.Time or a struct that
// embeds one (jsontime.UnixString), EnforcementType string.
func newTimelockReader(typ reflect.Type) (*timelockReader, *Problem) {
	st := typ
	if st != nil && st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	if st == nil || st.Kind() != reflect.Struct {
		return nil, &Problem{Feature: "timelock_event", Found: fmt.Sprint(typ), Want: "a struct or a pointer to one", Effect: timelockOff}
	}
	r := &timelockReader{typ: typ}
	timeType := reflect.TypeFor[time.Time]()
	mismatch := func(name string, found any, want string) *Problem {
		return &Problem{Feature: "timelock_event", Found: fmt.Sprintf("%s.%s %v", st, name, found), Want: want, Effect: timelockOff}
	}
	field, ok := st.FieldByName("IsActive")
	if !ok || !field.IsExported() || field.Type != reflect.TypeFor[bool]() {
		return nil, mismatch("IsActive", fieldType(field, ok), "bool")
	}
	r.active = field.Index
	field, ok = st.FieldByName("EnforcementType")
	if !ok || !field.IsExported() || field.Type != reflect.TypeFor[string]() {
		return nil, mismatch("EnforcementType", fieldType(field, ok), "string")
	}
	r.enforcement = field.Index
	field, ok = st.FieldByName("TimeEnforcementEnds")
	switch {
	case !ok || !field.IsExported():
		return nil, mismatch("TimeEnforcementEnds", fieldType(field, ok), "time.Time")
	case field.Type == timeType:
		r.ends = field.Index
	case field.Type.Kind() == reflect.Struct:
		inner, embedded := field.Type.FieldByName("Time")
		if !embedded || !inner.Anonymous || inner.Type != timeType || len(inner.Index) != 1 {
			return nil, mismatch("TimeEnforcementEnds", field.Type, "time.Time, or a struct embedding one")
		}
		r.ends = append(slices.Clone(field.Index), inner.Index...)
	default:
		return nil, mismatch("TimeEnforcementEnds", field.Type, "time.Time, or a struct embedding one")
	}
	return r, nil
}

func fieldType(field reflect.StructField, ok bool) any {
	if !ok {
		return "(absent)"
	}
	return field.Type
}

// read reads an event of the reader's type; false for any other value.
func (r *timelockReader) read(evt any) (Timelock, bool) {
	if r == nil || evt == nil || reflect.TypeOf(evt) != r.typ {
		return Timelock{}, false
	}
	v := reflect.ValueOf(evt)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return Timelock{}, false
		}
		v = v.Elem()
	}
	out := Timelock{
		Active:      v.FieldByIndex(r.active).Bool(),
		Enforcement: v.FieldByIndex(r.enforcement).String(),
	}
	// A missing end is unmarshalled as the zero time or the epoch.
	if ts, _ := v.FieldByIndex(r.ends).Interface().(time.Time); !ts.IsZero() && ts.Unix() > 0 {
		out.Ends = ts
	}
	return out, true
}

// Timelock reads the server's timelock notification out of a whatsmeow
// event; false for any other event, and on a whatsmeow whose event the
// plugin could not read back at Enable.
func (f *Features) Timelock(evt any) (Timelock, bool) {
	return f.types.timelock.read(evt)
}
