package hooks

import (
	"bytes"
	"testing"

	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waSyncAction"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func bytesField(num protowire.Number, value []byte) []byte {
	raw := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendBytes(raw, value)
}

func TestSaltFromSyncAction(t *testing.T) {
	// SyncActionValue{timestamp: 5, nctSaltSyncAction (80): {salt (1): "s3cret"}}
	raw := protowire.AppendTag(nil, 1, protowire.VarintType)
	raw = protowire.AppendVarint(raw, 5)
	raw = append(raw, bytesField(syncActionNCTSaltField, bytesField(nctSaltActionSaltField, []byte("s3cret")))...)
	var value waSyncAction.SyncActionValue
	if err := proto.Unmarshal(raw, &value); err != nil {
		t.Fatal(err)
	}
	if value.GetTimestamp() != 5 {
		t.Fatal("known fields must still parse")
	}
	if got := SaltFromSyncAction(&value); !bytes.Equal(got, []byte("s3cret")) {
		t.Fatalf("salt = %q", got)
	}
	if SaltFromSyncAction(&waSyncAction.SyncActionValue{}) != nil {
		t.Error("no field 80 must give no salt")
	}
	if SaltFromSyncAction(nil) != nil {
		t.Error("a nil value must give no salt")
	}
}

func TestHistorySyncSaltField(t *testing.T) {
	// syncType (1) is a required field.
	raw := protowire.AppendTag(nil, 1, protowire.VarintType)
	raw = protowire.AppendVarint(raw, uint64(waHistorySync.HistorySync_INITIAL_BOOTSTRAP))
	raw = append(raw, bytesField(historySyncNCTSaltField, []byte("history"))...)
	var hs waHistorySync.HistorySync
	if err := proto.Unmarshal(raw, &hs); err != nil {
		t.Fatal(err)
	}
	got, ok := UnknownBytesField(&hs, historySyncNCTSaltField)
	if !ok || !bytes.Equal(got, []byte("history")) {
		t.Fatalf("field 19 = %q, %v", got, ok)
	}
}

func TestFindBytesFieldMalformed(t *testing.T) {
	// A truncated length-delimited field must not panic or return garbage.
	raw := protowire.AppendTag(nil, 19, protowire.BytesType)
	raw = protowire.AppendVarint(raw, 10)
	raw = append(raw, 'x')
	if _, ok := findBytesField(raw, 19); ok {
		t.Fatal("a truncated field must not be found")
	}
	// The last occurrence wins, as protobuf merges.
	raw = append(bytesField(19, []byte("a")), bytesField(19, []byte("b"))...)
	if got, _ := findBytesField(raw, 19); string(got) != "b" {
		t.Fatalf("got %q, want the last occurrence", got)
	}
}

func TestShortHash(t *testing.T) {
	if ShortHash(nil) != "none" {
		t.Error("empty secrets say none")
	}
	// sha256("abc") starts with ba7816bf.
	if got := ShortHash([]byte("abc")); got != "ba7816bf" {
		t.Errorf("ShortHash(abc) = %s", got)
	}
}
