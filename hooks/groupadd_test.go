package hooks

import (
	"errors"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

func TestParseGroupAddReply(t *testing.T) {
	lid := types.NewJID("200000000000001", types.HiddenUserServer)
	pn := types.NewJID("15550000002", types.DefaultUserServer)
	pnLID := types.NewJID("200000000000002", types.HiddenUserServer)
	reply := &waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"type": "result"}, Content: []waBinary.Node{{
		Tag: "add", Content: []waBinary.Node{
			{Tag: "participant", Attrs: waBinary.Attrs{"jid": lid, "phone_number": pn, "type": "admin"}},
			{Tag: "participant", Attrs: waBinary.Attrs{"jid": pn, "lid": pnLID, "error": "403"}, Content: []waBinary.Node{
				{Tag: "add_request", Attrs: waBinary.Attrs{"code": "abc", "expiration": "1800000000"}},
			}},
		},
	}}}
	got, err := parseGroupAddReply(reply)
	if err != nil || len(got) != 2 {
		t.Fatalf("parse = %+v, %v", got, err)
	}
	if got[0].JID != lid || got[0].LID != lid || got[0].PhoneNumber != pn || !got[0].IsAdmin || got[0].IsSuperAdmin || got[0].Error != 0 {
		t.Errorf("first participant %+v", got[0])
	}
	second := got[1]
	if second.PhoneNumber != pn || second.LID != pnLID || second.Error != 403 || second.AddRequest == nil ||
		second.AddRequest.Code != "abc" || !second.AddRequest.Expiration.Equal(time.Unix(1800000000, 0)) {
		t.Errorf("second participant %+v", second)
	}

	errReply := &waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"type": "error"}, Content: []waBinary.Node{
		{Tag: "error", Attrs: waBinary.Attrs{"code": "403", "text": "forbidden"}},
	}}
	if _, err := parseGroupAddReply(errReply); !errors.Is(err, whatsmeow.ErrIQForbidden) {
		t.Errorf("error reply: %v, want whatsmeow.ErrIQForbidden", err)
	}
	var missing *whatsmeow.ElementMissingError
	if _, err := parseGroupAddReply(&waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"type": "result"}}); !errors.As(err, &missing) {
		t.Errorf("reply without <add>: %v", err)
	}
	if _, err := parseGroupAddReply(nil); err == nil {
		t.Error("no reply parsed")
	}
}

func TestGroupPropsPolicy(t *testing.T) {
	p := ComputePolicy(DefaultDefaults(), nil, nil)
	if p.GroupCreateTokens || p.GroupAddTokens || p.GroupMaxMissing != 32 {
		t.Fatalf("defaults: %+v", p)
	}
	p = ComputePolicy(DefaultDefaults(), map[int]string{PropGroupCreateToken: "1", PropGroupAddToken: "true", PropGroupMaxMissing: "-5"}, nil)
	if !p.GroupCreateTokens || !p.GroupAddTokens || p.GroupMaxMissing != 0 {
		t.Fatalf("server props: %+v", p)
	}
	if err := checkPropValue(PropGroupMaxMissing, "x"); err == nil {
		t.Fatal("a non-integer 34957 must be refused")
	}
}
