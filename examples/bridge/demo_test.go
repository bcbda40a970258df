package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// runDemoForTest runs the story with its output in a buffer and its logs
// in the test log.
func runDemoForTest(t *testing.T, keepDB bool) (*demoResult, string) {
	t.Helper()
	var out bytes.Buffer
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	res, err := runDemo(context.Background(), demoConfig{Out: &out, Log: log, KeepDB: keepDB})
	if res != nil && res.DBPath != "" {
		t.Cleanup(func() { _ = os.RemoveAll(strings.TrimSuffix(res.DBPath, "/bridge.db")) })
	}
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	return res, out.String()
}

// hmacLID is the cstoken from the protocol's definition, written out here
// rather than shared with the demo.
func hmacLID(salt []byte, lid types.JID) []byte {
	mac := hmac.New(sha256.New, salt)
	mac.Write([]byte(lid.User + "@lid"))
	return mac.Sum(nil)
}

func tokenChild(t *testing.T, msg *waBinary.Node, tag string) []byte {
	t.Helper()
	if msg == nil {
		t.Fatalf("no message captured")
	}
	child, ok := msg.GetOptionalChildByTag(tag)
	if !ok {
		return nil
	}
	content, ok := child.Content.([]byte)
	if !ok {
		t.Fatalf("<%s> content is %T, not bytes", tag, child.Content)
	}
	return content
}

// issuedT reads the t of the <token> naming jid in a privacy IQ.
func issuedT(t *testing.T, iq *waBinary.Node, jid types.JID) string {
	t.Helper()
	if iq == nil || iq.Tag != "iq" || iq.Attrs["xmlns"] != "privacy" {
		t.Fatalf("not a privacy IQ: %v", iq)
	}
	tokens, _ := iq.GetOptionalChildByTag("tokens")
	for _, tok := range tokens.GetChildren() {
		if got, _ := tok.Attrs["jid"].(types.JID); got == jid {
			return tok.AttrGetter().String("t")
		}
	}
	t.Fatalf("privacy IQ does not name %s", jid)
	return ""
}

func TestDemoStory(t *testing.T) {
	res, out := runDemoForTest(t, false)
	if failed := res.Failed(); len(failed) > 0 {
		t.Fatalf("the demo's own checks failed: %+v", failed)
	}

	// a. The first message carries HMAC-SHA256(salt, "<lid>@lid") and is
	// accepted; the same message without the plugin gets 463.
	want := hmacLID(res.Salt, res.Alice.LID)
	if got := tokenChild(t, res.First.Message, "cstoken"); !bytes.Equal(got, want) {
		t.Errorf("cstoken = %x, want %x", got, want)
	}
	if tokenChild(t, res.First.Message, "tctoken") != nil {
		t.Error("first message: never both tokens")
	}
	if res.First.Err != nil || res.First.Ack == nil || res.First.Ack.Attrs["error"] != nil {
		t.Errorf("first message not accepted: err %v, ack %v", res.First.Err, res.First.Ack)
	}
	if res.Native {
		// A whatsmeow that computes cstokens itself does so from the
		// plugin's salt store: the bypassed message is accepted too.
		if got := tokenChild(t, res.Bypass.Message, "cstoken"); !bytes.Equal(got, hmacLID(res.Salt, res.Bob.LID)) || res.Bypass.Err != nil {
			t.Errorf("bypassed message on a native whatsmeow: cstoken %x, err %v", got, res.Bypass.Err)
		}
	} else {
		if tokenChild(t, res.Bypass.Message, "cstoken") != nil || tokenChild(t, res.Bypass.Message, "tctoken") != nil {
			t.Error("the bypassed message must carry no token")
		}
		// The server's own node, before encoding: the code may be an int.
		if res.Bypass.Ack == nil || fmt.Sprint(res.Bypass.Ack.Attrs["error"]) != "463" {
			t.Errorf("bypass ack = %v, want error 463", res.Bypass.Ack)
		}
		if !errors.Is(res.Bypass.Err, whatsmeow.ErrServerReturnedError) {
			t.Errorf("bypass error = %v, want ErrServerReturnedError", res.Bypass.Err)
		}
	}

	// b. The reply carries the bytes Alice issued.
	if got := tokenChild(t, res.Reply.Message, "tctoken"); len(got) == 0 || !bytes.Equal(got, res.AliceToken) {
		t.Errorf("reply tctoken = %x, want %x", got, res.AliceToken)
	}
	if tokenChild(t, res.Reply.Message, "cstoken") != nil {
		t.Error("reply: never both tokens")
	}

	// c. One issuance in the bucket, at the sender timestamp.
	if len(res.IssuesInBucket) != 1 {
		t.Fatalf("%d privacy IQs to Alice in the bucket, want 1", len(res.IssuesInBucket))
	}
	if res.IssuesInBucket[0] != res.Issue {
		t.Error("the one issuance in the bucket must be the one after the first send")
	}
	original := issuedT(t, res.Issue, res.Alice.LID)

	// d. The reissue keeps the original t.
	if got := issuedT(t, res.Reissue, res.Alice.LID); got != original {
		t.Errorf("reissue t = %s, want the original %s", got, original)
	}

	// The timelock step: the last refused first contact is diagnosed as a
	// timelock, in a SendError that wraps whatsmeow's 463.
	if len(res.TimelockSteps) != 2 || res.TimelockSteps[1] != "timelock" || res.TimelockError == nil ||
		!errors.Is(res.TimelockError, whatsmeow.ErrServerReturnedError) {
		t.Errorf("timelock diagnoses %v, error %v", res.TimelockSteps, res.TimelockError)
	}
	if !strings.Contains(out, "SendMessage to Dave: timelock") {
		t.Error("the story must say the diagnosis")
	}

	// e. Five weeks later one token is pruned.
	if res.Pruned != 1 {
		t.Errorf("pruned %d, want 1", res.Pruned)
	}
	if len(res.TokenAfter) != 0 {
		t.Error("Alice's token survived pruning")
	}

	// Secrets never reach the output, in any common encoding.
	for name, secret := range map[string][]byte{"salt": res.Salt, "Alice's token": res.AliceToken, "cstoken": want} {
		for _, form := range []string{string(secret), hex.EncodeToString(secret), strings.ToUpper(hex.EncodeToString(secret))} {
			if strings.Contains(out, form) {
				t.Errorf("the %s appears in the output", name)
			}
		}
	}
	if res.DBPath != "" {
		t.Error("without --keep-db no path is reported")
	}
}

func TestDemoKeepDB(t *testing.T) {
	res, out := runDemoForTest(t, true)
	if res.DBPath == "" {
		t.Fatal("--keep-db must report the database path")
	}
	if _, err := os.Stat(res.DBPath); err != nil {
		t.Fatalf("kept database: %v", err)
	}
	if !strings.Contains(out, res.DBPath) {
		t.Error("the kept path must be printed")
	}
}
