package hooks

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The NCT salt fields are unknown to whatsmeow 2025-12's protobufs and known
// to later ones; UnknownBytesField must read a field by number either way.
// Well-known types stand in for a message that knows the field.
func TestBytesFieldByNumberKnownField(t *testing.T) {
	got, ok := UnknownBytesField(wrapperspb.Bytes([]byte("salt")), 1)
	if !ok || string(got) != "salt" {
		t.Fatalf("known bytes field: %q, %v", got, ok)
	}
	if _, ok := UnknownBytesField(&wrapperspb.BytesValue{}, 1); ok {
		t.Fatal("an unset known field must read as absent")
	}

	// A known message field comes back in wire form, as an unknown one would.
	inner := structpb.NewStringValue("x")
	outer := structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{inner}})
	raw, ok := UnknownBytesField(outer, 6) // Value.list_value
	want, _ := proto.Marshal(outer.GetListValue())
	if !ok || !bytes.Equal(raw, want) {
		t.Fatalf("known message field: %x, %v; want %x", raw, ok, want)
	}
}
