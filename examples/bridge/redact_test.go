package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"
)

func TestRedactSecrets(t *testing.T) {
	cases := []struct{ in, want string }{
		{`no stanza here`, `no stanza here`},
		{`<message to="a@lid"><enc/><tctoken>0a0b0c</tctoken></message>`, `<message to="a@lid"><enc/><tctoken>[redacted]</tctoken></message>`},
		{`<message><cstoken>deadbeef</cstoken></message>`, `<message><cstoken>[redacted]</cstoken></message>`},
		{`<notification type="privacy_token"><tokens><token jid="x@lid" t="1" type="trusted_contact">alice-token</token></tokens></notification>`,
			`<notification type="privacy_token"><tokens><token jid="x@lid" t="1" type="trusted_contact">[redacted]</token></tokens></notification>`},
		{`<iq xmlns="privacy"><tokens><token jid="x@lid" t="1" type="trusted_contact"/></tokens></iq>`, `<iq xmlns="privacy"><tokens><token jid="x@lid" t="1" type="trusted_contact"/></tokens></iq>`},
		{`<participant jid="x"><privacy>00ff</privacy></participant>`, `<participant jid="x"><privacy>[redacted]</privacy></participant>`},
		{`<iq><privacy><list name="last"/></privacy></iq>`, `<iq><privacy><list name="last"/></privacy></iq>`},
		{`<tctoken>aa</tctoken> and <tctoken>bb</tctoken>`, `<tctoken>[redacted]</tctoken> and <tctoken>[redacted]</tctoken>`},
		{`<tctoken>cut off by truncation`, `<tctoken>[redacted]`},
		{`<tctoken></tctoken>`, `<tctoken></tctoken>`},
		{`{"message":"<presence type=\"subscribe\"><tctoken>c0ffee</tctoken></presence>"}`, `{"message":"<presence type=\"subscribe\"><tctoken>[redacted]</tctoken></presence>"}`},
	}
	for _, c := range cases {
		if got := string(redactSecrets([]byte(c.in))); got != c.want {
			t.Errorf("redactSecrets(%s)\n got %s\nwant %s", c.in, got, c.want)
		}
	}
}

// TestDemoLogsNoSecrets runs the demo with every log line at debug level,
// in both log formats, through the bridge's own logger (whatsmeow's stanza
// loggers and the fake server's included), and looks for every token and
// the salt: raw, in hex and in base64.
func TestDemoLogsNoSecrets(t *testing.T) {
	for _, jsonLogs := range []bool{true, false} {
		// The demo logs from many goroutines: the buffer must be safe for that.
		var logs lockedBuffer
		log, err := newLogger(&logs, jsonLogs, "debug")
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		res, err := runDemo(context.Background(), demoConfig{Out: &out, Log: log})
		if res != nil && res.DBPath != "" {
			t.Cleanup(func() { _ = os.RemoveAll(strings.TrimSuffix(res.DBPath, "/bridge.db")) })
		}
		if err != nil {
			t.Fatalf("demo failed: %v", err)
		}
		if !strings.Contains(logs.String(), "<message") {
			t.Fatal("the debug logs must include whatsmeow's stanzas, or this test proves nothing")
		}
		secrets := map[string][]byte{
			"salt":             res.Salt,
			"Alice's token":    res.AliceToken,
			"cstoken to Alice": expectedCSToken(res.Salt, res.Alice.LID),
			"cstoken to Bob":   expectedCSToken(res.Salt, res.Bob.LID),
		}
		all := logs.String() + out.String()
		for name, secret := range secrets {
			if len(secret) == 0 {
				t.Fatalf("%s unknown to the test", name)
			}
			for form, s := range map[string]string{
				"raw":        string(secret),
				"hex":        hex.EncodeToString(secret),
				"HEX":        strings.ToUpper(hex.EncodeToString(secret)),
				"base64":     base64.StdEncoding.EncodeToString(secret),
				"base64 raw": base64.RawStdEncoding.EncodeToString(secret),
				"base64 url": base64.RawURLEncoding.EncodeToString(secret),
			} {
				if strings.Contains(all, s) {
					t.Errorf("json=%v: %s appears in the logs in %s", jsonLogs, name, form)
				}
			}
		}
	}
}

// lockedBuffer is a bytes.Buffer that many goroutines may write to.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
