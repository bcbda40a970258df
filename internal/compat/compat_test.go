package compat

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// Fake whatsmeow types: the known shape, and shapes a later whatsmeow
// might have.

type fakeSaltStore struct{ salt []byte }

func (s *fakeSaltStore) PutNCTSalt(_ context.Context, salt []byte) error { s.salt = salt; return nil }
func (s *fakeSaltStore) GetNCTSalt(context.Context) ([]byte, error)      { return s.salt, nil }
func (s *fakeSaltStore) DeleteNCTSalt(context.Context) error             { s.salt = nil; return nil }

type saltGetter interface {
	GetNCTSalt(ctx context.Context) ([]byte, error)
}

type saltStoreWithMore interface {
	NCTSaltStore
	ListNCTSalts(ctx context.Context) ([][]byte, error)
}

type goodInternals struct{}

func (goodInternals) GetTCTokenSenderTS(types.JID) time.Time  { return time.Unix(1, 0) }
func (goodInternals) SetTCTokenSenderTS(types.JID, time.Time) {}

type unixInternals struct{}

func (unixInternals) GetTCTokenSenderTS(types.JID) int64  { return 1 }
func (unixInternals) SetTCTokenSenderTS(types.JID, int64) {}

type setterOnlyInternals struct{}

func (setterOnlyInternals) SetTCTokenSenderTS(types.JID, time.Time, bool) {}

func TestFindSaltStore(t *testing.T) {
	for _, tc := range []struct {
		name   string
		device any
		want   string
	}{
		{"known", struct{ NCTSalt NCTSaltStore }{}, "Device.NCTSalt"},
		{"absent (whatsmeow 2025-12)", struct{ Other int }{}, None},
		{"fewer methods", struct{ NCTSalt saltGetter }{}, Disabled},
		{"more methods", struct{ NCTSalt saltStoreWithMore }{}, Disabled},
		{"a concrete type", struct{ NCTSalt *fakeSaltStore }{}, Disabled},
	} {
		slot, got, problem := findSaltStore(reflect.TypeOf(tc.device))
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
		if (got == Disabled) != (problem != nil) || slot.found() != (got == "Device.NCTSalt") {
			t.Errorf("%s: slot found %v, problem %v", tc.name, slot.found(), problem)
		}
		if problem != nil && !strings.Contains(problem.Found, "Device.NCTSalt") {
			t.Errorf("%s: the warning must name the field: %v", tc.name, problem)
		}
	}
}

func TestFindSenderTimestamp(t *testing.T) {
	for _, tc := range []struct {
		name  string
		token any
		want  string
	}{
		{"known", struct{ SenderTimestamp time.Time }{}, "PrivacyToken.SenderTimestamp"},
		{"absent (whatsmeow 2025-12)", struct{ Timestamp time.Time }{}, None},
		{"unix seconds", struct{ SenderTimestamp int64 }{}, Disabled},
		{"a pointer", struct{ SenderTimestamp *time.Time }{}, Disabled},
	} {
		slot, got, problem := findSenderTimestamp(reflect.TypeOf(tc.token))
		if got != tc.want || (got == Disabled) != (problem != nil) || slot.found() != (got != None && got != Disabled) {
			t.Errorf("%s: %q (found %v, problem %v), want %q", tc.name, got, slot.found(), problem, tc.want)
		}
		if problem != nil && !strings.Contains(problem.Found, "SenderTimestamp") {
			t.Errorf("%s: the warning must name the field: %v", tc.name, problem)
		}
	}
}

func TestFindSenderMap(t *testing.T) {
	for _, tc := range []struct {
		name      string
		internals any
		want      string
	}{
		{"known", goodInternals{}, "DangerousInternals.GetTCTokenSenderTS"},
		{"absent (whatsmeow 2025-12)", struct{}{}, None},
		{"no client", nil, None},
		{"unix seconds", unixInternals{}, Disabled},
		{"another signature", setterOnlyInternals{}, Disabled},
	} {
		n, got, problem := findSenderMap(tc.internals)
		if got != tc.want || (got == Disabled) != (problem != nil) || (n != nil) != (got != None && got != Disabled) {
			t.Errorf("%s: %q (map %v, problem %v), want %q", tc.name, got, n != nil, problem, tc.want)
		}
		if problem != nil && !strings.Contains(problem.Found, "TCTokenSenderTS") {
			t.Errorf("%s: the warning must name the method: %v", tc.name, problem)
		}
	}
}

// The plugin adds its own <cstoken> only on a whatsmeow with neither a
// sender map nor an NCT salt store: whatever either finding, whatsmeow and
// the plugin never both add one.
func TestDecideNativeNeverTwoCSTokens(t *testing.T) {
	findings := []string{None, Disabled, "found"}
	for _, senderMap := range findings {
		for _, saltStore := range findings {
			native, problem := decideNative(senderMap, saltStore)
			whatsmeowMayAdd := saltStore != None // it computes a cstoken from its own salt store
			pluginAdds := !native
			if whatsmeowMayAdd && pluginAdds {
				t.Errorf("sender map %s, salt store %s: both add a <cstoken>", senderMap, saltStore)
			}
			if native != (senderMap != None || saltStore != None) {
				t.Errorf("sender map %s, salt store %s: native = %v", senderMap, saltStore, native)
			}
			if disagree := (senderMap == None) != (saltStore == None); disagree != (problem != nil) {
				t.Errorf("sender map %s, salt store %s: problem %v", senderMap, saltStore, problem)
			}
		}
	}
}

// The accessors on the real whatsmeow: they read and write the real fields
// where this whatsmeow has them, and do nothing where it does not.
func TestAccessorsOnThisWhatsmeow(t *testing.T) {
	f := Detect(nil)
	if f.Line().SenderMap != None || !f.SenderTS(types.NewJID("1", types.HiddenUserServer)).IsZero() {
		t.Fatal("no client: no sender map")
	}
	dev := &store.Device{}
	_, hasSalt := f.NCTSaltStore(dev)
	if hasSalt != (f.Line().SaltStore == "Device.NCTSalt") {
		t.Fatalf("NCTSaltStore found %v, line says %q", hasSalt, f.Line().SaltStore)
	}
	ours := &fakeSaltStore{salt: []byte("x")}
	if f.SetNCTSaltStore(dev, ours) != hasSalt {
		t.Fatal("SetNCTSaltStore must set exactly where the field exists")
	}
	if got, _ := f.NCTSaltStore(dev); hasSalt && got != NCTSaltStore(ours) {
		t.Fatalf("read back %v", got)
	}

	var token store.PrivacyToken
	ts := time.Unix(1700000000, 0)
	f.SetSenderTimestamp(&token, ts)
	hasSender := f.Line().SenderTimestamp == "PrivacyToken.SenderTimestamp"
	if got := f.SenderTimestamp(token); got.Equal(ts) != hasSender {
		t.Fatalf("sender timestamp read back %v (field %q)", got, f.Line().SenderTimestamp)
	}
}
