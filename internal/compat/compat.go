// Package compat is the one place that knows how whatsmeow 2025-12 and the
// newer whatsmeow (commit 33cfac51 and later) differ where the compiler
// cannot check it: methods asked for at run time, struct fields found by
// name, an event type learned from what whatsmeow dispatches, protobuf
// fields read by number. One build of the plugin serves both versions, so
// none of this can be a build tag.
//
// Detect looks once per client, at Enable, and checks every type it finds
// against the one the plugin was written for. A field of another type turns
// off the feature that reads it, with a warning naming the field: the plugin
// never guesses what a value of an unknown type means. The rest of the
// plugin asks the result one question at a time.
package compat

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// Values of the detection line for a feature this whatsmeow lacks, and for
// one it has in a shape the plugin does not know (the feature is then off).
const (
	None     = "none"
	Disabled = "disabled"
)

// Features is what one client's whatsmeow offers, as detected at Enable.
type Features struct {
	native bool
	// senders is whatsmeow's in-memory map of our issuances (its sender
	// timestamps), nil when it has none the plugin knows.
	senders senderMap
	types   *typeFacts
	line    Detected
	// problems are the features found in a shape the plugin does not know,
	// or that disagree; each is logged as a warning.
	problems []Problem
}

// Detected is the detection line logged at Enable: one value per
// difference, None when this whatsmeow lacks it, Disabled when it has it in
// a shape the plugin does not know.
type Detected struct {
	// Native: whatsmeow attaches tokens, computes cstokens and issues by
	// itself, so the plugin adds no token child and leaves issuance to it.
	Native bool
	// SenderMap is whatsmeow's map of the sender timestamps of its own
	// issuances (DangerousInternals).
	SenderMap string
	// SaltStore is whatsmeow's NCT salt store, which the plugin stands in
	// for (Device.NCTSalt).
	SaltStore string
	// SenderTimestamp is PrivacyToken.SenderTimestamp.
	SenderTimestamp string
	// TimelockEvent is the event whatsmeow dispatches for the server's
	// reach-out timelock notification.
	TimelockEvent string
	// HistorySalt is where a history-sync blob carries the NCT salt.
	HistorySalt string
	// AppStateSalt is where an nct_salt_sync mutation carries it.
	AppStateSalt string
}

// Problem is a feature turned off because whatsmeow has it in a shape the
// plugin does not know, or a choice made because two findings disagree.
type Problem struct {
	// Feature is the field of Detected it concerns.
	Feature string
	// Found names what whatsmeow has: the field or method and its type.
	Found string
	// Want is what the plugin knows how to read.
	Want string
	// Effect is what the plugin does about it.
	Effect string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s: found %s, want %s: %s", p.Feature, p.Found, p.Want, p.Effect)
}

// typeFacts is what the compiled-in whatsmeow's types look like. It is the
// same for every client of one process, so it is looked at once.
type typeFacts struct {
	saltStore    fieldSlot
	senderTS     fieldSlot
	timelock     *timelockReader
	historySalt  bytesField
	appStateSalt nestedBytesField
	line         Detected
	problems     []Problem
}

var (
	typesOnce sync.Once
	typesSeen *typeFacts
)

func detectTypes() *typeFacts {
	typesOnce.Do(func() {
		facts := &typeFacts{}
		var problem *Problem
		facts.saltStore, facts.line.SaltStore, problem = findSaltStore(reflect.TypeFor[store.Device]())
		facts.addProblem(problem)
		facts.senderTS, facts.line.SenderTimestamp, problem = findSenderTimestamp(reflect.TypeFor[store.PrivacyToken]())
		facts.addProblem(problem)
		facts.timelock, facts.line.TimelockEvent, problem = detectTimelock(probeTimelockEvents())
		facts.addProblem(problem)
		facts.historySalt, facts.line.HistorySalt, problem = findHistorySalt(historySyncDescriptor())
		facts.addProblem(problem)
		facts.appStateSalt, facts.line.AppStateSalt, problem = findAppStateSalt(syncActionDescriptor())
		facts.addProblem(problem)
		typesSeen = facts
	})
	return typesSeen
}

func (t *typeFacts) addProblem(p *Problem) {
	if p != nil {
		t.problems = append(t.problems, *p)
	}
}

// Detect finds out what cli's whatsmeow offers. It is called once per
// client, at Enable; a nil client is a whatsmeow with nothing of its own.
func Detect(cli *whatsmeow.Client) *Features {
	facts := detectTypes()
	f := &Features{types: facts, line: facts.line}
	f.problems = append(f.problems, facts.problems...)
	var internals any
	if cli != nil {
		//lint:ignore SA1019 whatsmeow exposes its sender map only through DangerousInternals.
		internals = cli.DangerousInternals()
	}
	var problem *Problem
	f.senders, f.line.SenderMap, problem = findSenderMap(internals)
	if problem != nil {
		f.problems = append(f.problems, *problem)
	}
	f.native, problem = decideNative(f.line.SenderMap, f.line.SaltStore)
	if problem != nil {
		f.problems = append(f.problems, *problem)
	}
	f.line.Native = f.native
	return f
}

// decideNative decides native mode from both findings at once, so that the
// plugin and whatsmeow never both add a <cstoken>: the plugin adds its own
// only on a whatsmeow with neither a sender map nor an NCT salt store,
// which therefore computes no cstoken. The two agree on both known
// versions; when they disagree the whatsmeow is taken as native (it
// attaches, and may compute a cstoken, by itself) and a warning says so.
func decideNative(senderMap, saltStore string) (bool, *Problem) {
	hasMap, hasSalt := senderMap != None, saltStore != None
	switch {
	case hasMap == hasSalt:
		return hasMap, nil
	case hasMap:
		return true, &Problem{Feature: "native", Found: "a sender map but no NCT salt store", Want: "both or neither",
			Effect: "taken as native: the plugin adds no <cstoken> of its own, and whatsmeow has no salt to compute one"}
	default:
		return true, &Problem{Feature: "native", Found: "an NCT salt store but no sender map", Want: "both or neither",
			Effect: "taken as native: only whatsmeow adds a <cstoken>; the plugin cannot see whatsmeow's own issuances"}
	}
}

// Line is the detection line's values.
func (f *Features) Line() Detected { return f.line }

// Problems lists the features turned off, and the choices made because
// two findings disagreed.
func (f *Features) Problems() []Problem { return f.problems }

// Log writes what was detected: a warning per problem, then the one line.
func (f *Features) Log(log zerolog.Logger) {
	for _, p := range f.problems {
		log.Warn().Str("feature", p.Feature).Str("found", p.Found).Str("want", p.Want).Str("effect", p.Effect).
			Msg("whatsmeow has a feature in a shape the plugin does not know")
	}
	l := f.line
	log.Info().Bool("native", l.Native).Str("sender_map", l.SenderMap).Str("salt_store", l.SaltStore).
		Str("sender_timestamp", l.SenderTimestamp).Str("timelock_event", l.TimelockEvent).
		Str("history_salt", l.HistorySalt).Str("app_state_salt", l.AppStateSalt).
		Msg("Detected what this whatsmeow does by itself")
}

// Native reports whether whatsmeow attaches tokens, computes cstokens and
// issues by itself. The plugin then adds no token child of its own and
// issues nothing after a send: it is the store and the policy behind
// whatsmeow's mechanics.
func (f *Features) Native() bool { return f.native }

// senderMap is whatsmeow's in-memory map of the sender timestamps of its
// own issuances, which decides whether it issues after a DM. whatsmeow
// 2025-12 has no such map.
type senderMap interface {
	GetTCTokenSenderTS(jid types.JID) time.Time
	SetTCTokenSenderTS(jid types.JID, ts time.Time)
}

var senderMapMethods = []string{"GetTCTokenSenderTS", "SetTCTokenSenderTS"}

// findSenderMap asks whatsmeow's internals for the sender map. Methods of
// that name with another signature are reported, not used.
func findSenderMap(internals any) (senderMap, string, *Problem) {
	if internals == nil {
		return nil, None, nil
	}
	if n, ok := internals.(senderMap); ok {
		return n, "DangerousInternals.GetTCTokenSenderTS", nil
	}
	t := reflect.TypeOf(internals)
	for _, name := range senderMapMethods {
		if m, ok := t.MethodByName(name); ok {
			want, _ := reflect.TypeFor[senderMap]().MethodByName(name)
			return nil, Disabled, &Problem{Feature: "sender_map", Found: fmt.Sprintf("%s %s", name, m.Type), Want: want.Type.String(),
				Effect: "whatsmeow's own issuances are not recorded, and the plugin also reissues on an explicit identity change"}
		}
	}
	return nil, None, nil
}

// SenderTS is when whatsmeow last issued our token to jid by itself, as its
// in-memory map says; zero if never, or without such a map.
func (f *Features) SenderTS(jid types.JID) time.Time {
	if f.senders == nil {
		return time.Time{}
	}
	return f.senders.GetTCTokenSenderTS(jid)
}

// fieldSlot is a struct field found by name whose type was checked.
type fieldSlot struct {
	index []int // nil when absent or of another type
}

func (s fieldSlot) found() bool { return s.index != nil }

// NCTSaltStore is whatsmeow's NCT salt store interface (store.NCTSaltStore
// on the newer whatsmeow), restated so that the plugin builds against
// whatsmeow 2025-12, which lacks it.
type NCTSaltStore interface {
	PutNCTSalt(ctx context.Context, salt []byte) error
	GetNCTSalt(ctx context.Context) ([]byte, error)
	DeleteNCTSalt(ctx context.Context) error
}

// findSaltStore finds Device.NCTSalt. The plugin stands in for it, so its
// type must be an interface of exactly NCTSaltStore's methods: one more
// method and the plugin could not implement it, one fewer and whatsmeow's
// own store behind the plugin might lack what the plugin calls.
func findSaltStore(device reflect.Type) (fieldSlot, string, *Problem) {
	field, ok := device.FieldByName("NCTSalt")
	if !ok {
		return fieldSlot{}, None, nil
	}
	want := reflect.TypeFor[NCTSaltStore]()
	typ := field.Type
	if !field.IsExported() || typ.Kind() != reflect.Interface || !want.Implements(typ) || !typ.Implements(want) {
		return fieldSlot{}, Disabled, &Problem{Feature: "salt_store", Found: fmt.Sprintf("Device.NCTSalt %s", typ), Want: "an interface of PutNCTSalt, GetNCTSalt, DeleteNCTSalt",
			Effect: "whatsmeow's cstokens go out from its own salt, past AB prop 24941 and the plugin's salt rules; the plugin adds none"}
	}
	return fieldSlot{index: field.Index}, "Device.NCTSalt", nil
}

// NCTSaltStore returns whatsmeow's NCT salt store of dev (nil if unset),
// and false when the plugin cannot stand in for it: whatsmeow 2025-12 has
// none, or it has an unknown shape.
func (f *Features) NCTSaltStore(dev *store.Device) (NCTSaltStore, bool) {
	slot := f.types.saltStore
	if !slot.found() || dev == nil {
		return nil, false
	}
	current, _ := reflect.ValueOf(dev).Elem().FieldByIndex(slot.index).Interface().(NCTSaltStore)
	return current, true
}

// SetNCTSaltStore puts s in dev's NCT salt store field; it reports false
// where NCTSaltStore does.
func (f *Features) SetNCTSaltStore(dev *store.Device, s NCTSaltStore) bool {
	slot := f.types.saltStore
	if !slot.found() || dev == nil || s == nil {
		return false
	}
	reflect.ValueOf(dev).Elem().FieldByIndex(slot.index).Set(reflect.ValueOf(s))
	return true
}

// findSenderTimestamp finds PrivacyToken.SenderTimestamp, which must be a
// time.Time.
func findSenderTimestamp(token reflect.Type) (fieldSlot, string, *Problem) {
	field, ok := token.FieldByName("SenderTimestamp")
	if !ok {
		return fieldSlot{}, None, nil
	}
	if !field.IsExported() || field.Type != reflect.TypeFor[time.Time]() {
		return fieldSlot{}, Disabled, &Problem{Feature: "sender_timestamp", Found: fmt.Sprintf("PrivacyToken.SenderTimestamp %s", field.Type), Want: "time.Time",
			Effect: "the sender timestamps whatsmeow writes are not recorded, and none are reported to it, so it may issue again after a restart"}
	}
	return fieldSlot{index: field.Index}, "PrivacyToken.SenderTimestamp", nil
}

// HasSenderTimestamp reports whether whatsmeow's tokens carry a sender
// timestamp the plugin can read and set (the newer whatsmeow).
func (f *Features) HasSenderTimestamp() bool { return f.types.senderTS.found() }

// SenderTimestamp reads token.SenderTimestamp; zero where the field is
// absent or off.
func (f *Features) SenderTimestamp(token store.PrivacyToken) time.Time {
	slot := f.types.senderTS
	if !slot.found() {
		return time.Time{}
	}
	ts, _ := reflect.ValueOf(&token).Elem().FieldByIndex(slot.index).Interface().(time.Time)
	return ts
}

// SetSenderTimestamp sets token.SenderTimestamp where the field exists.
func (f *Features) SetSenderTimestamp(token *store.PrivacyToken, ts time.Time) {
	slot := f.types.senderTS
	if slot.found() && token != nil {
		reflect.ValueOf(token).Elem().FieldByIndex(slot.index).Set(reflect.ValueOf(ts))
	}
}
