package hooks

import (
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
)

func TestTTLSet(t *testing.T) {
	s := newTTLSet(2, time.Hour)
	a, b, c := types.NewJID("1", types.DefaultUserServer), types.NewJID("2", types.DefaultUserServer), types.NewJID("3", types.DefaultUserServer)
	s.Add(a, struct{}{})
	if _, ok := s.Get(a); !ok {
		t.Fatal("a member must be found")
	}
	s.Add(b, struct{}{})
	s.Add(c, struct{}{})
	if _, ok := s.Get(a); ok {
		t.Fatal("the set is bounded: the oldest member goes")
	}
	expired := newTTLSet(2, -time.Second)
	expired.Add(a, struct{}{})
	if _, ok := expired.Get(a); ok {
		t.Fatal("an expired member must not be found")
	}
}
