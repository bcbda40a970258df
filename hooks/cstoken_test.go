package hooks

import (
	"encoding/hex"
	"testing"

	"go.mau.fi/whatsmeow/types"
)

func TestCSTokenKnownAnswer(t *testing.T) {
	got := csToken([]byte("whatsapp_nct_salt_example"), types.NewJID("alice", types.HiddenUserServer))
	const want = "7c6afc325785ac3c4f571e648a3bb822f0e2e49434812ed2809aea2e7043b576"
	if hex.EncodeToString(got) != want {
		t.Fatalf("CSToken = %x, want %s", got, want)
	}
}

func TestCSTokenIgnoresDevicePart(t *testing.T) {
	salt := []byte("s")
	plain := csToken(salt, types.NewJID("123", types.HiddenUserServer))
	ad := types.JID{User: "123", Server: types.HiddenUserServer, Device: 3}
	if hex.EncodeToString(csToken(salt, ad)) != hex.EncodeToString(plain) {
		t.Fatal("the device part must not change the cstoken")
	}
}

func TestCSTokenNeedsSaltAndLID(t *testing.T) {
	if csToken(nil, types.NewJID("1", types.HiddenUserServer)) != nil {
		t.Error("no salt must give no cstoken")
	}
	if csToken([]byte("s"), types.NewJID("1", types.DefaultUserServer)) != nil {
		t.Error("a PN must give no cstoken")
	}
}
