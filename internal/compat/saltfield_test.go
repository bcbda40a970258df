package compat

import (
	"bytes"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waSyncAction"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func wireBytes(num protowire.Number, value []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), value)
}

// The real messages of this whatsmeow, whether its protobufs know the salt
// fields (the newer one) or not (2025-12).
func TestAppStateSaltOnThisWhatsmeow(t *testing.T) {
	f := Detect(nil)
	// SyncActionValue{timestamp: 5, nctSaltSyncAction (80): {salt (1): "s3cret"}}
	raw := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 5)
	raw = append(raw, wireBytes(SyncActionNCTSaltField, wireBytes(NCTSaltActionSaltField, []byte("s3cret")))...)
	var value waSyncAction.SyncActionValue
	if err := proto.Unmarshal(raw, &value); err != nil {
		t.Fatal(err)
	}
	if value.GetTimestamp() != 5 {
		t.Fatal("known fields must still parse")
	}
	if got := f.AppStateSalt(&value); !bytes.Equal(got, []byte("s3cret")) {
		t.Fatalf("salt = %q (%s)", got, f.Line().AppStateSalt)
	}
	if f.AppStateSalt(&waSyncAction.SyncActionValue{}) != nil {
		t.Error("no field 80 must give no salt")
	}
	if f.AppStateSalt(nil) != nil {
		t.Error("a nil value must give no salt")
	}
}

func TestHistorySaltOnThisWhatsmeow(t *testing.T) {
	f := Detect(nil)
	// syncType (1) is a required field.
	raw := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), uint64(waHistorySync.HistorySync_INITIAL_BOOTSTRAP))
	raw = append(raw, wireBytes(HistorySyncNCTSaltField, []byte("history"))...)
	var hs waHistorySync.HistorySync
	if err := proto.Unmarshal(raw, &hs); err != nil {
		t.Fatal(err)
	}
	if got, ok := f.HistorySalt(&hs); !ok || !bytes.Equal(got, []byte("history")) {
		t.Fatalf("field 19 = %q, %v (%s)", got, ok, f.Line().HistorySalt)
	}
	if _, ok := f.HistorySalt(&waHistorySync.HistorySync{}); ok {
		t.Error("no field 19 must give no salt")
	}
	if _, ok := f.HistorySalt(nil); ok {
		t.Error("a nil blob must give no salt")
	}
}

func TestLastBytesFieldMalformed(t *testing.T) {
	// A truncated length-delimited field must not panic or return garbage.
	raw := protowire.AppendVarint(protowire.AppendTag(nil, 19, protowire.BytesType), 10)
	raw = append(raw, 'x')
	if _, ok := lastBytesField(raw, 19); ok {
		t.Fatal("a truncated field must not be found")
	}
	// The last occurrence wins, as protobuf merges.
	raw = append(wireBytes(19, []byte("a")), wireBytes(19, []byte("b"))...)
	if got, _ := lastBytesField(raw, 19); string(got) != "b" {
		t.Fatalf("got %q, want the last occurrence", got)
	}
}

// A field the descriptor knows is read from the message, and a known
// message field comes back in wire form, as an unknown one would.
// Well-known types stand in for messages that know the field.
func TestBytesFieldKnownToTheDescriptor(t *testing.T) {
	field, _, problem := findBytesField((&wrapperspb.BytesValue{}).ProtoReflect().Descriptor(), 1, protoreflect.BytesKind, "test", "")
	if problem != nil || field.fd == nil {
		t.Fatalf("BytesValue.value: %v", problem)
	}
	if got, ok := field.read(wrapperspb.Bytes([]byte("salt")).ProtoReflect()); !ok || string(got) != "salt" {
		t.Fatalf("known bytes field: %q, %v", got, ok)
	}
	if _, ok := field.read((&wrapperspb.BytesValue{}).ProtoReflect()); ok {
		t.Fatal("an unset known field must read as absent")
	}

	list, _, problem := findBytesField((&structpb.Value{}).ProtoReflect().Descriptor(), 6, protoreflect.MessageKind, "test", "")
	if problem != nil {
		t.Fatal(problem)
	}
	outer := structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{structpb.NewStringValue("x")}})
	want, _ := proto.Marshal(outer.GetListValue())
	if raw, ok := list.read(outer.ProtoReflect()); !ok || !bytes.Equal(raw, want) {
		t.Fatalf("known message field: %x, %v; want %x", raw, ok, want)
	}
}

// fakeFile builds descriptors for a later whatsmeow whose salt fields have
// other kinds than the plugin knows.
func fakeFile(t *testing.T, messages ...*descriptorpb.DescriptorProto) protoreflect.FileDescriptor {
	t.Helper()
	file, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:        proto.String("fake.proto"),
		Package:     proto.String("fake"),
		Syntax:      proto.String("proto2"),
		MessageType: messages,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return file
}

func fakeField(name string, num int32, kind descriptorpb.FieldDescriptorProto_Type, label descriptorpb.FieldDescriptorProto_Label, typeName string) *descriptorpb.FieldDescriptorProto {
	field := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), Type: kind.Enum(), Label: label.Enum()}
	if typeName != "" {
		field.TypeName = proto.String(typeName)
	}
	return field
}

const (
	optional = descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
	repeated = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
	tBytes   = descriptorpb.FieldDescriptorProto_TYPE_BYTES
	tString  = descriptorpb.FieldDescriptorProto_TYPE_STRING
	tMessage = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
)

// A salt field the descriptor knows with another kind is never in the
// unknown fields either: it would be missed on every sync, silently. It is
// reported, naming the field, and the feature is off.
func TestSaltFieldsOfAnotherKindAreReported(t *testing.T) {
	for _, tc := range []struct {
		name  string
		field *descriptorpb.FieldDescriptorProto
	}{
		{"a string", fakeField("nctSalt", 19, tString, optional, "")},
		{"repeated", fakeField("nctSalt", 19, tBytes, repeated, "")},
	} {
		md := fakeFile(t, &descriptorpb.DescriptorProto{Name: proto.String("HistorySync"), Field: []*descriptorpb.FieldDescriptorProto{tc.field}}).Messages().Get(0)
		field, line, problem := findHistorySalt(md)
		if line != Disabled || problem == nil || !strings.Contains(problem.Found, "fake.HistorySync.nctSalt") {
			t.Errorf("history salt as %s: %q, %v", tc.name, line, problem)
			continue
		}
		// Even with the bytes in the unknown fields, nothing is read.
		msg := dynamicpb.NewMessage(md)
		msg.SetUnknown(wireBytes(19, []byte("salt")))
		if _, ok := field.read(msg); ok {
			t.Errorf("history salt as %s: read although off", tc.name)
		}
	}

	action := &descriptorpb.DescriptorProto{Name: proto.String("NctSaltSyncAction"), Field: []*descriptorpb.FieldDescriptorProto{fakeField("salt", 1, tString, optional, "")}}
	for _, tc := range []struct {
		name     string
		messages []*descriptorpb.DescriptorProto
		found    string
	}{
		{"the action as bytes", []*descriptorpb.DescriptorProto{{Name: proto.String("SyncActionValue"), Field: []*descriptorpb.FieldDescriptorProto{
			fakeField("nctSaltSyncAction", 80, tBytes, optional, "")}}}, "fake.SyncActionValue.nctSaltSyncAction"},
		{"the salt as a string", []*descriptorpb.DescriptorProto{{Name: proto.String("SyncActionValue"), Field: []*descriptorpb.FieldDescriptorProto{
			fakeField("nctSaltSyncAction", 80, tMessage, optional, ".fake.NctSaltSyncAction")}}, action}, "fake.NctSaltSyncAction.salt"},
	} {
		md := fakeFile(t, tc.messages...).Messages().ByName("SyncActionValue")
		field, line, problem := findAppStateSalt(md)
		if line != Disabled || problem == nil || !strings.Contains(problem.Found, tc.found) {
			t.Errorf("%s: %q, %v", tc.name, line, problem)
			continue
		}
		msg := dynamicpb.NewMessage(md)
		msg.SetUnknown(wireBytes(80, wireBytes(1, []byte("salt"))))
		if field.read(msg) != nil {
			t.Errorf("%s: read although off", tc.name)
		}
	}
}

// The mixed case: the action message known, its salt field not (a
// whatsmeow whose protobufs are half-way), is still read.
func TestAppStateSaltActionKnownSaltUnknown(t *testing.T) {
	file := fakeFile(t,
		&descriptorpb.DescriptorProto{Name: proto.String("SyncActionValue"), Field: []*descriptorpb.FieldDescriptorProto{
			fakeField("nctSaltSyncAction", 80, tMessage, optional, ".fake.NctSaltSyncAction")}},
		&descriptorpb.DescriptorProto{Name: proto.String("NctSaltSyncAction")})
	md := file.Messages().ByName("SyncActionValue")
	field, line, problem := findAppStateSalt(md)
	if problem != nil || line == Disabled {
		t.Fatalf("%q, %v", line, problem)
	}
	msg := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(wireBytes(80, wireBytes(1, []byte("salt"))), msg); err != nil {
		t.Fatal(err)
	}
	if got := field.read(msg); string(got) != "salt" {
		t.Fatalf("read %q", got)
	}
}
