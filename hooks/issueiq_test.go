package hooks

import (
	"bytes"
	"errors"
	"testing"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

var (
	aliceLID = types.NewJID("111111111111111", types.HiddenUserServer)
	bobPN    = types.NewJID("15551230002", types.DefaultUserServer)
)

func TestBuildIssueTokens(t *testing.T) {
	node := buildIssueTokens([]issueRecipient{
		{JID: types.JID{User: aliceLID.User, Server: types.HiddenUserServer, Device: 3}, T: 1700000000},
		{JID: bobPN, T: 1700000001},
	})
	if node.Tag != "tokens" || len(node.GetChildren()) != 2 {
		t.Fatalf("want <tokens> with 2 children, got %s", nodeXML(&node))
	}
	first := node.GetChildren()[0]
	if first.Attrs["jid"] != aliceLID || first.Attrs["t"] != "1700000000" || first.Attrs["type"] != "trusted_contact" {
		t.Errorf("first token attrs = %v", first.Attrs)
	}
	if _, isJID := first.Attrs["jid"].(types.JID); !isJID {
		t.Error("jid must be a JID attribute, not a string")
	}
	if first.Content != nil {
		t.Error("an issuance token carries no content")
	}
	// It must survive whatsmeow's binary encoding.
	if _, err := waBinary.Marshal(waBinary.Node{Tag: "iq", Content: []waBinary.Node{node}}); err != nil {
		t.Fatalf("marshal: %v", err)
	}
}

func TestChunkTargets(t *testing.T) {
	targets := make([]issueRecipient, 2*maxTokensPerIQ+1)
	chunks := chunkTargets(targets)
	if len(chunks) != 3 || len(chunks[0]) != maxTokensPerIQ || len(chunks[2]) != 1 {
		t.Fatalf("got %d chunks", len(chunks))
	}
	if chunkTargets(nil) != nil {
		t.Error("no targets must give no chunks")
	}
}

func resultIQ(children ...waBinary.Node) *waBinary.Node {
	node := &waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"type": "result", "id": "1"}}
	if children != nil {
		node.Content = children
	}
	return node
}

func TestParseIssueReplyWithTokens(t *testing.T) {
	reply := resultIQ(waBinary.Node{Tag: "tokens", Content: []waBinary.Node{
		{Tag: "token", Attrs: waBinary.Attrs{"jid": aliceLID, "t": "1700000005", "type": "trusted_contact"}, Content: []byte{1, 2, 3}},
		{Tag: "token", Attrs: waBinary.Attrs{"jid": bobPN, "t": "1700000006", "type": "trusted_contact"}},
		{Tag: "token", Attrs: waBinary.Attrs{"jid": types.NewJID("3", types.HiddenUserServer), "error": "406"}},
	}})
	received, refused, problems, err := parseIssueReply(reply)
	if err != nil || problems != nil {
		t.Fatal(err, problems)
	}
	if len(received) != 1 || received[0].JID != aliceLID || received[0].Timestamp != 1700000005 || !bytes.Equal(received[0].Token, []byte{1, 2, 3}) {
		t.Errorf("received = %+v", received)
	}
	if len(refused) != 1 || refused[0].User != "3" {
		t.Errorf("refused = %v", refused)
	}
}

func TestParseIssueReplyEmpty(t *testing.T) {
	received, refused, problems, err := parseIssueReply(resultIQ())
	if err != nil || received != nil || refused != nil || problems != nil {
		t.Fatalf("empty result: %v %v %v %v", received, refused, problems, err)
	}
}

func TestParseIssueReplyError(t *testing.T) {
	reply := &waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"type": "error"}, Content: []waBinary.Node{
		{Tag: "error", Attrs: waBinary.Attrs{"code": "500", "text": "internal-server-error"}},
	}}
	_, _, _, err := parseIssueReply(reply)
	var iqErr *IQError
	if !errors.As(err, &iqErr) || iqErr.Code != 500 || iqErr.Text != "internal-server-error" {
		t.Fatalf("err = %v", err)
	}
}

func TestParseIssueReplyMalformed(t *testing.T) {
	for name, reply := range map[string]*waBinary.Node{
		"nil":       nil,
		"not an iq": {Tag: "message"},
		"odd type":  {Tag: "iq", Attrs: waBinary.Attrs{"type": "get"}},
	} {
		if _, _, _, err := parseIssueReply(reply); !errors.Is(err, ErrMalformedReply) {
			t.Errorf("%s: err = %v, want ErrMalformedReply", name, err)
		}
	}
}

// One bad token must not lose the rest of an accepted reply.
func TestParseIssueReplySkipsBadTokens(t *testing.T) {
	good := waBinary.Node{Tag: "token", Attrs: waBinary.Attrs{"jid": aliceLID, "t": "7"}, Content: []byte("good")}
	cases := map[string]waBinary.Node{
		"wrong child":     {Tag: "bogus"},
		"no jid":          {Tag: "token", Attrs: waBinary.Attrs{"t": "1"}, Content: []byte{1}},
		"bad timestamp":   {Tag: "token", Attrs: waBinary.Attrs{"jid": bobPN, "t": "soon"}, Content: []byte{1}},
		"oversized token": {Tag: "token", Attrs: waBinary.Attrs{"jid": bobPN, "t": "1"}, Content: make([]byte, MaxTokenSize+1)},
	}
	for name, bad := range cases {
		reply := resultIQ(waBinary.Node{Tag: "tokens", Content: []waBinary.Node{bad, good}})
		received, _, problems, err := parseIssueReply(reply)
		if err != nil {
			t.Errorf("%s: a bad token must not fail the reply: %v", name, err)
		}
		if len(problems) != 1 || !errors.Is(problems[0], ErrMalformedReply) {
			t.Errorf("%s: problems = %v", name, problems)
		}
		if len(received) != 1 || string(received[0].Token) != "good" {
			t.Errorf("%s: the good token must still be read, got %+v", name, received)
		}
	}
}

func TestIssueTarget(t *testing.T) {
	pn := types.NewJID("15551230009", types.DefaultUserServer)
	lid := types.NewJID("111111111111119", types.HiddenUserServer)
	cases := []struct {
		name       string
		issueToLID bool
		key, lid   types.JID
		pn         types.JID
		want       types.JID
	}{
		{"LID known", true, lid, lid, pn, lid},
		{"prop 14303 off", false, lid, lid, pn, pn},
		{"LID unknown", true, pn, types.EmptyJID, pn, pn},
		{"PN unknown, prop off", false, lid, lid, types.EmptyJID, lid},
	}
	for _, c := range cases {
		if got := issueTarget(c.issueToLID, c.key, c.lid, c.pn); got != c.want {
			t.Errorf("%s: issueTarget = %s, want %s", c.name, got, c.want)
		}
	}
}
