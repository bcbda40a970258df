package compat

import (
	"fmt"

	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waSyncAction"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The NCT salt's protobuf fields. whatsmeow 2025-12's protobufs lack them,
// so they arrive there as unknown fields; the newer whatsmeow's know them,
// and then they are absent from the unknown fields. Either way the plugin
// reads them by number.
const (
	// HistorySyncNCTSaltField is HistorySync.nctSalt (bytes).
	HistorySyncNCTSaltField protowire.Number = 19
	// SyncActionNCTSaltField is SyncActionValue.nctSaltSyncAction (a
	// NctSaltSyncAction message).
	SyncActionNCTSaltField protowire.Number = 80
	// NCTSaltActionSaltField is NctSaltSyncAction.salt (bytes).
	NCTSaltActionSaltField protowire.Number = 1
)

func historySyncDescriptor() protoreflect.MessageDescriptor {
	return (&waHistorySync.HistorySync{}).ProtoReflect().Descriptor()
}

func syncActionDescriptor() protoreflect.MessageDescriptor {
	return (&waSyncAction.SyncActionValue{}).ProtoReflect().Descriptor()
}

// bytesField is a bytes field by number: known to the descriptor (fd set),
// or read from the unknown fields, or off (a known field of another kind,
// which the unknown fields never hold).
type bytesField struct {
	num protowire.Number
	fd  protoreflect.FieldDescriptor
	off bool
}

// findBytesField checks field num of md: absent, or a singular field of
// kind want.
func findBytesField(md protoreflect.MessageDescriptor, num protowire.Number, want protoreflect.Kind, feature, effect string) (bytesField, string, *Problem) {
	fd := md.Fields().ByNumber(num)
	if fd == nil {
		return bytesField{num: num}, fmt.Sprintf("unknown field %s.%d", md.Name(), num), nil
	}
	if fd.Kind() != want || fd.Cardinality() == protoreflect.Repeated {
		return bytesField{num: num, off: true}, Disabled, &Problem{Feature: feature, Found: fmt.Sprintf("%s (%d) %s %s", fd.FullName(), num, fd.Cardinality(), fd.Kind()),
			Want: fmt.Sprintf("a singular %s field", want), Effect: effect}
	}
	return bytesField{num: num, fd: fd}, fmt.Sprintf("%s.%s", md.Name(), fd.Name()), nil
}

// read returns the field's last value in m, and whether it is there.
func (b bytesField) read(m protoreflect.Message) ([]byte, bool) {
	switch {
	case b.off || m == nil || !m.IsValid():
		return nil, false
	case b.fd == nil:
		return lastBytesField(m.GetUnknown(), b.num)
	case !m.Has(b.fd):
		return nil, false
	case b.fd.Kind() == protoreflect.MessageKind:
		// A known message field in its wire form, as an unknown one is.
		raw, err := proto.Marshal(m.Get(b.fd).Message().Interface())
		return raw, err == nil
	default:
		return m.Get(b.fd).Bytes(), true
	}
}

const historySaltOff = "history sync brings no NCT salt backfill; app state still does"

func findHistorySalt(md protoreflect.MessageDescriptor) (bytesField, string, *Problem) {
	return findBytesField(md, HistorySyncNCTSaltField, protoreflect.BytesKind, "history_salt", historySaltOff)
}

// HistorySalt is the NCT salt a history-sync blob carries, if any.
func (f *Features) HistorySalt(data *waHistorySync.HistorySync) ([]byte, bool) {
	if data == nil {
		return nil, false
	}
	return f.types.historySalt.read(data.ProtoReflect())
}

// nestedBytesField is the app-state salt: a bytes field inside a message
// field, each known to the descriptors or not.
type nestedBytesField struct {
	outer bytesField
	inner bytesField
}

const appStateSaltOff = "nct_salt_sync mutations are ignored: no NCT salt from app state, and a REMOVE still withdraws it"

func findAppStateSalt(md protoreflect.MessageDescriptor) (nestedBytesField, string, *Problem) {
	outer, outerName, problem := findBytesField(md, SyncActionNCTSaltField, protoreflect.MessageKind, "app_state_salt", appStateSaltOff)
	if problem != nil {
		return nestedBytesField{outer: outer, inner: bytesField{off: true}}, Disabled, problem
	}
	if outer.fd == nil {
		return nestedBytesField{outer: outer, inner: bytesField{num: NCTSaltActionSaltField}},
			fmt.Sprintf("unknown field %s.%d.%d", md.Name(), SyncActionNCTSaltField, NCTSaltActionSaltField), nil
	}
	inner, _, problem := findBytesField(outer.fd.Message(), NCTSaltActionSaltField, protoreflect.BytesKind, "app_state_salt", appStateSaltOff)
	if problem != nil {
		return nestedBytesField{outer: outer, inner: inner}, Disabled, problem
	}
	if inner.fd == nil {
		return nestedBytesField{outer: outer, inner: inner}, fmt.Sprintf("%s.%d", outerName, NCTSaltActionSaltField), nil
	}
	return nestedBytesField{outer: outer, inner: inner}, outerName + "." + string(inner.fd.Name()), nil
}

// AppStateSalt is the salt an nct_salt_sync mutation's value carries; nil
// if none.
func (f *Features) AppStateSalt(value *waSyncAction.SyncActionValue) []byte {
	if value == nil {
		return nil
	}
	return f.types.appStateSalt.read(value.ProtoReflect())
}

func (n nestedBytesField) read(m protoreflect.Message) []byte {
	if n.inner.off {
		return nil
	}
	if n.outer.fd != nil && n.inner.fd != nil {
		// Both known: no round trip through the wire form.
		if m == nil || !m.IsValid() || !m.Has(n.outer.fd) {
			return nil
		}
		salt, _ := n.inner.read(m.Get(n.outer.fd).Message())
		return salt
	}
	action, ok := n.outer.read(m)
	if !ok {
		return nil
	}
	salt, _ := lastBytesField(action, n.inner.num)
	return salt
}

// lastBytesField finds a length-delimited field by number in wire-form
// bytes. The last occurrence wins, as in protobuf's own merge rules; a
// malformed tail ends the search with what was found before it.
func lastBytesField(raw []byte, field protowire.Number) (value []byte, found bool) {
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			return value, found
		}
		raw = raw[n:]
		if num == field && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(raw)
			if m < 0 {
				return value, found
			}
			value, found = v, true
			raw = raw[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, raw)
		if m < 0 {
			return value, found
		}
		raw = raw[m:]
	}
	return value, found
}
