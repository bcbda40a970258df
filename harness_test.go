package tctoken_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/store"
	wsqlstore "go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/wamock"
)

// week is the default bucket duration.
const week = 604800 * time.Second

// fakeClock is the plugin's clock in tests: time moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	// Mid-bucket, so that a few hours either way stay in the same bucket.
	start := time.Now().Truncate(week).Add(3 * 24 * time.Hour)
	if start.After(time.Now()) {
		start = start.Add(-week)
	}
	return &fakeClock{now: start}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// syncBuffer collects the plugin's JSON log lines for assertions.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// world is one logged-in client with the plugin enabled, talking to wamock,
// on one database.
type world struct {
	t         testing.TB
	ctx       context.Context
	srv       *wamock.Server
	db        *dbutil.Database
	container *wsqlstore.Container
	device    *store.Device
	deviceNum uint16 // kept apart: a logout clears device.ID under us
	cli       *whatsmeow.Client
	plugin    *tctoken.Plugin
	clock     *fakeClock
	logs      *syncBuffer
	// secrets are the token and salt bytes a test handed the client: the
	// plugin's logs must never show one (checked when the test ends).
	secretsMu sync.Mutex
	secrets   [][]byte
	opts      []tctoken.Option
	// pluginDB, when set, holds the plugin's tables apart from whatsmeow's
	// (db): what start hands Enable.
	pluginDB *dbutil.Database
}

// newWorld builds the client and enables the plugin, but does not connect,
// so that a test can arrange the database first.
func newWorld(t testing.TB, db *dbutil.Database, opts ...tctoken.Option) *world {
	t.Helper()
	w := newBareWorld(t, db, nil, opts...)
	w.start()
	return w
}

// newBareWorld builds the server and a logged-in device but no client: a
// test then runs whatsmeow alone (startPlain), as a bridge did before it
// added the plugin, or enables the plugin (start).
func newBareWorld(t testing.TB, db *dbutil.Database, srvOpts []wamock.Option, opts ...tctoken.Option) *world {
	t.Helper()
	w := &world{t: t, ctx: context.Background(), db: db, clock: newFakeClock(), logs: &syncBuffer{}, opts: opts}
	w.srv = wamock.NewServer(t, srvOpts...)
	w.container = dbtest.WhatsmeowContainer(t, db)
	var err error
	w.device, err = w.srv.NewDevice(w.ctx, w.container)
	if err != nil {
		t.Fatalf("create device: %v", err)
	}
	w.deviceNum = w.device.ID.Device
	t.Cleanup(w.checkNoSecretsLogged)
	return w
}

// secret records bytes the plugin's logs must never show.
func (w *world) secret(b []byte) {
	w.secretsMu.Lock()
	defer w.secretsMu.Unlock()
	w.secrets = append(w.secrets, bytes.Clone(b))
}

// checkNoSecretsLogged fails the test if any token or salt it handed the
// client appears in the plugin's debug-level logs: raw, in hex or in base64.
func (w *world) checkNoSecretsLogged() {
	logs := w.logs.String()
	w.secretsMu.Lock()
	defer w.secretsMu.Unlock()
	for _, secret := range w.secrets {
		for _, form := range []string{string(secret), hex.EncodeToString(secret), base64.StdEncoding.EncodeToString(secret), base64.RawStdEncoding.EncodeToString(secret)} {
			if len(form) >= 4 && strings.Contains(logs, form) {
				w.t.Errorf("a secret (%d bytes) appears in the plugin's logs as %q", len(secret), form)
			}
		}
	}
}

// startPlain creates a client for the device without the plugin: a bridge
// that never had it, or removed the Enable line.
func (w *world) startPlain() {
	w.t.Helper()
	w.cli = w.srv.NewClient(w.device, nil)
	w.plugin = nil
	cli := w.cli
	w.t.Cleanup(func() {
		w.srv.WaitIdle(w.deviceNum, time.Second)
		cli.Disconnect()
	})
}

// reloadDevice reads the device back from whatsmeow's store, as a new
// process would, after stopping the current client.
func (w *world) reloadDevice() {
	w.t.Helper()
	if w.plugin != nil {
		w.stop(w.plugin, w.cli)
	} else {
		w.srv.WaitIdle(w.deviceNum, time.Second)
		w.cli.Disconnect()
	}
	var err error
	w.device, err = w.container.GetDevice(w.ctx, *w.device.ID)
	if err != nil || w.device == nil {
		w.t.Fatalf("reload device: %v", err)
	}
}

// start creates a client for the device and enables the plugin on it.
func (w *world) start() {
	w.t.Helper()
	w.cli = w.srv.NewClient(w.device, nil)
	w.enable()
	cli, plugin := w.cli, w.plugin
	w.t.Cleanup(func() { w.stop(plugin, cli) })
}

// enable enables the plugin on the current client, with the world's
// logger, clock and options.
func (w *world) enable() {
	w.t.Helper()
	log := zerolog.New(zerolog.MultiLevelWriter(w.logs, zerolog.NewTestWriter(w.t))).Level(zerolog.DebugLevel)
	opts := append([]tctoken.Option{tctoken.WithLogger(log), tctoken.WithClock(w.clock.Now)}, w.opts...)
	db := w.db
	if w.pluginDB != nil {
		db = w.pluginDB
	}
	var err error
	w.plugin, err = tctoken.Enable(w.ctx, w.cli, db, opts...)
	if err != nil {
		w.t.Fatalf("Enable: %v", err)
	}
}

// stop closes the plugin, lets the client finish what it is sending, and
// disconnects it: whatsmeow 2025-12 races (under -race) when a frame is sent
// while Disconnect tears the socket down.
func (w *world) stop(plugin *tctoken.Plugin, cli *whatsmeow.Client) {
	plugin.Close()
	w.srv.WaitIdle(w.deviceNum, time.Second)
	cli.Disconnect()
}

func (w *world) connect() *world {
	w.t.Helper()
	w.srv.ConnectAndWait(w.t, w.cli)
	return w
}

// reconnect has the server drop the connection and waits until whatsmeow
// has logged in again (its passive IQ comes right after login). It returns
// the mark taken before the drop.
func (w *world) reconnect() int {
	w.t.Helper()
	// A drop closes the client's socket from its read loop, which
	// whatsmeow 2025-12 races (under -race) with a frame still being sent:
	// let the client finish sending first.
	w.srv.WaitIdle(w.deviceNum, time.Second)
	mark := w.srv.Mark()
	w.srv.DropConnections()
	w.srv.WaitForSince(w.t, mark, "login after reconnect", wamock.IsIQ("passive", "set"), 15*time.Second)
	return mark
}

// restart is a process restart: a new client and plugin on the same
// database, as a bridge would have after a crash.
func (w *world) restart() {
	w.t.Helper()
	w.reloadDevice()
	w.start()
	w.connect()
}

// forEachDB runs a test on SQLite and on PostgreSQL.
func forEachDB(t *testing.T, fn func(t *testing.T, db *dbutil.Database)) {
	dbtest.ForEachDialect(t, fn)
}

func text(s string) *waE2E.Message {
	return &waE2E.Message{Conversation: proto.String(s)}
}

// pushToken delivers a privacy_token notification from a contact, addressed
// to our LID. It does not wait: a token that must be refused never arrives.
func (w *world) pushToken(from, senderLID types.JID, token []byte, ts time.Time) {
	w.t.Helper()
	w.secret(token)
	target := w.srv.OwnLID()
	if err := w.srv.PushPrivacyToken(from, senderLID, target, token, ts.Unix()); err != nil {
		w.t.Fatalf("push privacy token: %v", err)
	}
}

// eventually polls cond until it holds or the deadline passes. It is for
// waiting on background work, not for measuring time.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, 10*time.Second, what, cond)
}

// eventuallyWithin is eventually with a deadline of its own, for work that
// takes seconds under -race on a loaded 2-core machine. A deadline, not a
// measure: nothing asserts how long it took.
func eventuallyWithin(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// receiveToken has a contact issue its token to us now, from its LID, and
// waits until the plugin holds it.
func (w *world) receiveToken(contact types.JID, token string) {
	w.t.Helper()
	w.pushToken(contact, types.EmptyJID, []byte(token), w.clock.Now())
	w.waitToken(contact, []byte(token))
}

// waitToken waits until Get returns a token equal to want for jid.
func (w *world) waitToken(jid types.JID, want []byte) *tctoken.Entry {
	w.t.Helper()
	var entry *tctoken.Entry
	eventually(w.t, "token for "+jid.String(), func() bool {
		var err error
		entry, err = w.plugin.Get(w.ctx, jid)
		return err == nil && entry != nil && bytes.Equal(entry.Token, want)
	})
	return entry
}

func child(node *waBinary.Node, tag string) (waBinary.Node, bool) {
	return node.GetOptionalChildByTag(tag)
}

func childBytes(node *waBinary.Node, tag string) []byte {
	c, ok := child(node, tag)
	if !ok {
		return nil
	}
	b, _ := c.Content.([]byte)
	return b
}

func countChildren(node *waBinary.Node, tag string) int {
	n := 0
	for _, c := range node.GetChildren() {
		if c.Tag == tag {
			n++
		}
	}
	return n
}

// privacyIQsFor returns the privacy IQs since mark that issue a token to jid.
func (w *world) privacyIQsFor(mark int, jid types.JID) []*waBinary.Node {
	var out []*waBinary.Node
	for _, node := range w.srv.Since(mark) {
		if !wamock.IsIQ("privacy", "set")(node) {
			continue
		}
		tokens, _ := node.GetOptionalChildByTag("tokens")
		for _, tok := range tokens.GetChildren() {
			if j, _ := tok.Attrs["jid"].(types.JID); j.ToNonAD() == jid.ToNonAD() {
				out = append(out, node)
				break
			}
		}
	}
	return out
}

// issuedT returns the t attribute issued to jid in a privacy IQ.
func issuedT(node *waBinary.Node, jid types.JID) string {
	tokens, _ := node.GetOptionalChildByTag("tokens")
	for _, tok := range tokens.GetChildren() {
		if j, _ := tok.Attrs["jid"].(types.JID); j.ToNonAD() == jid.ToNonAD() {
			t, _ := tok.Attrs["t"].(string)
			return t
		}
	}
	return ""
}

func storeToken(contact types.JID, token string, ts time.Time) store.PrivacyToken {
	return store.PrivacyToken{User: contact, Token: []byte(token), Timestamp: ts}
}

// logLines counts the plugin's log lines that contain every one of parts.
func (w *world) logLines(parts ...string) int {
	n := 0
	for _, line := range strings.Split(w.logs.String(), "\n") {
		all := true
		for _, part := range parts {
			all = all && strings.Contains(line, part)
		}
		if all {
			n++
		}
	}
	return n
}

// waitLog waits until at least n log lines contain every one of parts: how
// a test knows that background work it cannot see on the wire has run.
func (w *world) waitLog(n int, parts ...string) {
	w.t.Helper()
	eventually(w.t, fmt.Sprintf("%d log lines with %q", n, parts), func() bool { return w.logLines(parts...) >= n })
}
