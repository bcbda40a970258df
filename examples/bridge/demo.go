package main

// This is the only file that imports wamock, the fake WhatsApp server.
// Starting it replaces whatsmeow.WACertPubKey with a test root, which would
// break any connection to the real servers, so only --demo may get here.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/wamock"
)

// demoConfig is what --demo takes from the command line.
type demoConfig struct {
	Out    io.Writer
	Log    zerolog.Logger
	KeepDB bool
}

const (
	// demoWait bounds each wait for a stanza; everything is in process, so
	// it only matters when something is broken.
	demoWait = 5 * time.Second
	// demoQuiet is how long the demo watches for a stanza that must not
	// come.
	demoQuiet = 300 * time.Millisecond
	// idleWait bounds the wait for the client to go quiet before it is
	// disconnected. It is short because wamock occasionally loses track of
	// an answer and then waits out the whole timeout.
	idleWait = time.Second
	week     = 7 * 24 * time.Hour
)

// demo is one run of the story.
type demo struct {
	ctx    context.Context
	cfg    demoConfig
	srv    *wamock.Server
	sess   *session
	clock  *demoClock
	st     *story
	res    *demoResult
	device uint16

	alice, bob *wamock.Contact
	incoming   chan string
}

// runDemo runs the bridge against a fake WhatsApp server in this process
// and tells, step by step, what goes over the wire and why. It returns
// what it saw, and an error when setup failed or an expected fact did not
// hold.
func runDemo(ctx context.Context, cfg demoConfig) (*demoResult, error) {
	res := &demoResult{}
	out := &syncWriter{w: cfg.Out}
	d := &demo{ctx: ctx, cfg: cfg, res: res, st: &story{out: out, result: res}, incoming: make(chan string, 8)}

	dir, err := os.MkdirTemp("", "tctoken-bridge-demo-")
	if err != nil {
		return res, fmt.Errorf("create the demo's directory: %w", err)
	}
	dbPath := filepath.Join(dir, "bridge.db")
	if cfg.KeepDB {
		res.DBPath = dbPath
	} else {
		defer os.RemoveAll(dir)
	}

	d.srv, err = wamock.Start(wamock.WithLogger(cfg.Log))
	if err != nil {
		return res, fmt.Errorf("start the fake server: %w", err)
	}
	defer d.srv.Close()

	// From here on, the same path as real mode: one database for whatsmeow
	// and the plugin, the plugin enabled on the client, the bridge on top.
	db, container, err := openStore(ctx, "file:"+dbPath+"?_foreign_keys=on", cfg.Log)
	if err != nil {
		return res, err
	}
	defer db.Close()

	d.alice = d.srv.AddContact(wamock.ContactOptions{PushName: "Alice"})
	d.bob = d.srv.AddContact(wamock.ContactOptions{PushName: "Bob"})
	res.Alice = contactIDs{PN: d.alice.PN(), LID: d.alice.LID()}
	res.Bob = contactIDs{PN: d.bob.PN(), LID: d.bob.LID()}
	res.Salt = randomBytes(32)
	// The fake server plays the real one's part: a message to a contact
	// needs a tctoken, or a cstoken computed with our account's salt.
	d.srv.SetMessageRule(wamock.RequireCSToken(res.Salt))

	// Where real mode loads a paired device from the database, the demo has
	// the fake server make one: there is no phone to scan a QR code.
	device, err := d.srv.NewDevice(ctx, container)
	if err != nil {
		return res, fmt.Errorf("create the demo device: %w", err)
	}
	d.device = device.ID.Device
	// The story provokes an identity change on purpose; whatsmeow's warning
	// about it would only distract, so it logs errors only, unless debug
	// output was asked for.
	clientLog := cfg.Log
	if clientLog.GetLevel() > zerolog.DebugLevel {
		clientLog = clientLog.Level(max(clientLog.GetLevel(), zerolog.ErrorLevel))
	}
	client := d.srv.NewClient(device, whatsmeowLogger(clientLog))
	d.clock = newDemoClock(time.Now())
	d.sess, err = startSession(ctx, client, db, sessionParams{
		Chat:  d.alice.PN(),
		Out:   &prefixWriter{w: out, prefix: "   │ bridge: "},
		Log:   cfg.Log,
		Clock: d.clock.Now,
	})
	if err != nil {
		return res, err
	}
	defer func() {
		// whatsmeow may still be sending a receipt; closing under it races.
		if d.sess.client.IsConnected() {
			d.srv.WaitIdle(d.device, idleWait)
		}
		d.sess.close()
	}()
	d.sess.bridge.OnIncoming = func(_ types.MessageInfo, text string) {
		select {
		case d.incoming <- text:
		default:
		}
	}

	if err = d.run(); err != nil {
		return res, err
	}
	if res.DBPath != "" {
		d.st.printf("\nDemo database kept at %s", res.DBPath)
	}
	if failed := res.Failed(); len(failed) > 0 {
		d.st.printf("\n%d of %d facts did NOT hold.", len(failed), len(res.Checks))
		return res, fmt.Errorf("%d of %d expected facts did not hold, first: %s", len(failed), len(res.Checks), failed[0].Fact)
	}
	d.st.printf("\nAll %d facts held.", len(res.Checks))
	return res, nil
}

// run tells the story. It returns an error only when the story cannot go
// on; facts that fail are recorded and the story continues.
func (d *demo) run() error {
	st, bridge := d.st, d.sess.bridge
	st.printf("tctoken bridge demo: a fake WhatsApp server runs in this process; the bridge relays the chat with Alice (%s).", d.alice.PN())
	st.printf("Lines marked → are stanzas our client sent, ← what the server sent it. Tokens and the salt appear as sha256 short hashes.")

	if err := login(d.ctx, d.sess.client, pairing{}, d.cfg.Log); err != nil {
		return fmt.Errorf("log in to the fake server: %w", err)
	}
	lid, err := learnLID(d.ctx, d.sess.client, bridge.Chat())
	if err != nil {
		return err
	}
	st.printf("Connected as %s; Alice's LID is %s (from a usync query).", d.sess.client.Store.ID, lid)

	if err = d.stepSalt(1); err != nil {
		return err
	}
	d.stepFirstContact(2)
	d.stepBypass(3)
	d.stepIssue(4)
	if err = d.stepReply(5); err != nil {
		return err
	}
	d.stepReinstall(6)
	d.stepTimelock(7)
	d.stepPrune(8)

	// Anything the fake server could not decode or decrypt would make the
	// story above untrustworthy.
	errs := d.srv.Errors()
	st.printf("")
	st.expect(len(errs) == 0, "the fake server saw no protocol errors", "%v", errs)
	return nil
}

func (d *demo) stepSalt(n int) error {
	st := d.st
	st.step(n, "Our phone shares the NCT salt through app state")
	mark := d.srv.Mark()
	if err := d.srv.Phone().ShareAppStateKeys(d.ctx); err != nil {
		return fmt.Errorf("share app state keys: %w", err)
	}
	if err := d.srv.Phone().SetNCTSalt(d.ctx, d.res.Salt); err != nil {
		return fmt.Errorf("set the NCT salt: %w", err)
	}
	if iq, ok := d.srv.TryWaitFor(mark, wamock.IsIQ("w:sync:app:state", "set"), demoWait); ok {
		st.sent(iq)
	}
	held := waitUntil(demoWait, d.sess.plugin.HasSalt)
	st.note("salt sha256 %s (regular_high, index [\"nct_salt_sync\"], field 80)", tctoken.ShortHash(d.res.Salt))
	st.why("only the primary phone knows the salt; companions get it by app state sync, and need it to compute cstokens")
	st.expect(held, "the plugin holds the salt", "HasSalt stayed false")
	return nil
}

func (d *demo) stepFirstContact(n int) {
	st := d.st
	st.step(n, "The first message to Alice, a new contact, carries a <cstoken>")
	mark, sentMark := d.srv.Mark(), len(d.srv.Sent())
	// Exactly what typing a line does.
	_, err := d.sess.bridge.Send(d.ctx, "Hello Alice, this is the bridge.")
	d.res.First = d.exchange(mark, sentMark, err, d.alice)
	st.sent(d.res.First.Message)
	st.received(d.res.First.Ack)
	st.why("no token from Alice yet, so the plugin proves first contact with HMAC-SHA256(salt, \"%s\")", d.alice.LID())

	want := expectedCSToken(d.res.Salt, d.alice.LID())
	got := childBytes(d.res.First.Message, "cstoken")
	st.expect(bytes.Equal(got, want), "<cstoken> = HMAC-SHA256(salt, Alice's LID)", "got sha256 %s, want %s", tctoken.ShortHash(got), tctoken.ShortHash(want))
	st.expect(!hasChild(d.res.First.Message, "tctoken"), "no <tctoken> with it (never both)", "")
	st.expect(err == nil && d.res.First.Ack != nil && attr(d.res.First.Ack, "error") == "", "the server accepted it", "error %v, ack %s", err, describe(d.res.First.Ack))
}

func (d *demo) stepBypass(n int) {
	if d.sess.plugin.NativeTokens() {
		d.stepBypassNative(n)
		return
	}
	st := d.st
	st.step(n, "The same first message to Bob, with the plugin bypassed, is rejected")
	mark, sentMark := d.srv.Mark(), len(d.srv.Sent())
	// client.SendMessage instead of plugin.SendMessage: whatsmeow alone.
	_, err := d.sess.client.SendMessage(d.ctx, d.bob.LID(), &waE2E.Message{Conversation: proto.String("Hello Bob, this is the bridge.")})
	d.res.Bypass = d.exchange(mark, sentMark, err, d.bob)
	st.sent(d.res.Bypass.Message)
	st.received(d.res.Bypass.Ack)
	st.why("whatsmeow attaches a tctoken only when it holds one and has no cstoken fallback; the server answers 463")

	msg := d.res.Bypass.Message
	st.expect(msg != nil && !hasChild(msg, "cstoken") && !hasChild(msg, "tctoken"), "no token on the bypassed message", "%s", describe(msg))
	st.expect(attr(d.res.Bypass.Ack, "error") == "463", "the server's ack carries error 463", "%s", describe(d.res.Bypass.Ack))
	st.expect(errors.Is(err, whatsmeow.ErrServerReturnedError), "SendMessage returned ErrServerReturnedError", "got %v", err)
}

// stepBypassNative is step 3 on a whatsmeow that attaches tokens itself:
// bypassing Plugin.SendMessage still goes through the plugin's stores.
func (d *demo) stepBypassNative(n int) {
	st := d.st
	d.res.Native = true
	st.step(n, "The same first message to Bob, through whatsmeow alone, still carries the plugin's decision")
	mark, sentMark := d.srv.Mark(), len(d.srv.Sent())
	_, err := d.sess.client.SendMessage(d.ctx, d.bob.LID(), &waE2E.Message{Conversation: proto.String("Hello Bob, this is the bridge.")})
	d.res.Bypass = d.exchange(mark, sentMark, err, d.bob)
	st.sent(d.res.Bypass.Message)
	st.received(d.res.Bypass.Ack)
	st.why("this whatsmeow computes the cstoken itself, from the salt the plugin's store hands it when its policy allows one")

	msg := d.res.Bypass.Message
	want := expectedCSToken(d.res.Salt, d.bob.LID())
	st.expect(msg != nil && bytes.Equal(childBytes(msg, "cstoken"), want) && !hasChild(msg, "tctoken"), "exactly the <cstoken> over Bob's LID", "%s", describe(msg))
	st.expect(err == nil && attr(d.res.Bypass.Ack, "error") == "", "the server accepted it", "error %v, ack %s", err, describe(d.res.Bypass.Ack))
}

func (d *demo) stepIssue(n int) {
	st := d.st
	st.step(n, "After the accepted message, we issue our token to Alice")
	// The issuance runs in the background after the ack; find it in
	// everything since the first message.
	iq, ok := d.srv.TryWaitFor(0, isIssuanceTo(d.alice), demoWait)
	if ok {
		d.res.Issue = iq
	}
	st.sent(iq)
	recorded := waitUntil(demoWait, func() bool {
		entry, err := d.sess.plugin.Get(d.ctx, d.alice.PN())
		return err == nil && entry != nil && !entry.SenderTimestamp.IsZero()
	})
	st.why("so that Alice's side can attach a tctoken when writing to us; t is the sender timestamp the plugin records, once per 7-day bucket")

	tok, named := issuanceFor(iq, d.alice.LID())
	st.expect(named, "the privacy IQ names Alice's LID", "%s", describe(iq))
	if d.res.Native {
		// This whatsmeow issues by itself, at its own (real) clock; the
		// plugin records what it issued.
		t, _ := strconv.ParseInt(tok.T, 10, 64)
		st.expect(t > 0 && t <= time.Now().Unix(), "its t is whatsmeow's now", "t=%s", tok.T)
	} else {
		st.expect(tok.T == strconv.FormatInt(d.clock.Now().Unix(), 10), "its t is now (the plugin's clock)", "t=%s, now=%d", tok.T, d.clock.Now().Unix())
	}
	st.expect(recorded, "the plugin recorded the sender timestamp", "Get shows none")
}

func (d *demo) stepReply(n int) error {
	st := d.st
	st.step(n, "Alice answers and sends her token; our reply carries a <tctoken>")
	if err := d.alice.SendText(d.ctx, "Hi! Who is this?"); err != nil {
		return fmt.Errorf("message from Alice: %w", err)
	}
	d.awaitIncoming()
	d.res.AliceToken = randomBytes(24)
	d.res.AliceTokenT = d.clock.Now().Unix()
	notif := wamock.PrivacyTokenNotification(d.alice.LID(), types.EmptyJID, d.srv.OwnLID(), d.res.AliceToken, d.res.AliceTokenT)
	if err := d.srv.Push(notif); err != nil {
		return fmt.Errorf("push Alice's token: %w", err)
	}
	st.received(&notif)
	stored := waitUntil(demoWait, func() bool {
		entry, err := d.sess.plugin.Get(d.ctx, d.alice.PN())
		return err == nil && entry != nil && bytes.Equal(entry.Token, d.res.AliceToken)
	})
	st.expect(stored, "the plugin stored Alice's token", "Get never showed it")

	mark, sentMark := d.srv.Mark(), len(d.srv.Sent())
	_, err := d.sess.bridge.Send(d.ctx, "The tctoken demo. Nice to meet you!")
	d.res.Reply = d.exchange(mark, sentMark, err, d.alice)
	st.sent(d.res.Reply.Message)
	st.received(d.res.Reply.Ack)
	st.why("a valid token from the contact beats the cstoken fallback")
	got := childBytes(d.res.Reply.Message, "tctoken")
	st.expect(bytes.Equal(got, d.res.AliceToken), "<tctoken> = the bytes Alice sent", "got sha256 %s, want %s", tctoken.ShortHash(got), tctoken.ShortHash(d.res.AliceToken))
	st.expect(!hasChild(d.res.Reply.Message, "cstoken"), "no <cstoken> with it", "")
	st.expect(err == nil && attr(d.res.Reply.Ack, "error") == "", "the server accepted it", "error %v", err)

	// A second send in the same bucket must not issue again.
	extra, again := d.srv.TryWaitFor(mark, isIssuanceTo(d.alice), demoQuiet)
	for _, node := range d.srv.Received() {
		if isIssuanceTo(d.alice)(node) {
			d.res.IssuesInBucket = append(d.res.IssuesInBucket, node)
		}
	}
	if again {
		st.sent(extra)
	} else {
		st.note("(no privacy IQ within %s of the reply)", demoQuiet)
	}
	st.why("our token was issued in this bucket already; the next issuance waits for the next bucket")
	st.expect(len(d.res.IssuesInBucket) == 1, "exactly one issuance to Alice in this bucket", "saw %d", len(d.res.IssuesInBucket))

	st.note("/status now says:")
	d.sess.bridge.HandleLine(d.ctx, "/status")
	return nil
}

func (d *demo) stepReinstall(n int) {
	st := d.st
	d.clock.Advance(2 * 24 * time.Hour)
	st.step(n, "Two days later Alice reinstalls WhatsApp; we reissue with the original t")
	mark := d.srv.Mark()
	d.alice.Reinstall()
	if err := d.alice.SendText(d.ctx, "New phone, same Alice."); err != nil {
		st.expect(false, "Alice's message after the reinstall is delivered", "%v", err)
		return
	}
	iq, ok := d.srv.TryWaitFor(mark, isIssuanceTo(d.alice), demoWait)
	if ok {
		d.res.Reissue = iq
	}
	d.awaitIncoming()
	st.sent(iq)
	st.why("whatsmeow saw a new identity and emitted IdentityChange; the new install lost our token, so the plugin sends it again with the original t, keeping the same expiry window rather than starting a new one")
	original, _ := issuanceFor(d.res.Issue, d.alice.LID())
	again, named := issuanceFor(iq, d.alice.LID())
	st.expect(named, "a privacy IQ names Alice again", "%s", describe(iq))
	st.expect(named && again.T == original.T, "its t is the original issuance's", "t=%s, original %s", again.T, original.T)
	st.expect(again.T != strconv.FormatInt(d.clock.Now().Unix(), 10), "its t is not now", "t=%s", again.T)
}

// stepTimelock puts the account under a reach-out timelock: the server
// refuses first contacts whatever they carry, while Alice, who knows us,
// still gets through. The diagnosis must say timelock, not "no token", and
// the plugin must not reissue or retry into it.
func (d *demo) stepTimelock(n int) {
	st := d.st
	st.step(n, "The account falls under a reach-out timelock: a first message fails, and the diagnosis says so")
	d.srv.SetMessageRule(wamock.RefuseFirstContacts())
	defer d.srv.SetMessageRule(wamock.RequireCSToken(d.res.Salt))
	ends := time.Now().Add(24 * time.Hour).Truncate(time.Second)
	if err := d.srv.PushReachoutTimelock(d.ctx, wamock.ReachoutTimelock{Active: true, Ends: ends, EnforcementType: "REACHOUT_TIMELOCK"}); err != nil {
		st.expect(false, "the server's timelock notification is handled", "%v", err)
		return
	}
	if d.sess.plugin.Timelock().Active {
		st.why("the server announced it (a mex notification); this whatsmeow dispatches it as an event, which the plugin reads")
	} else {
		// whatsmeow 2025-12 drops the push. The plugin asks the server by
		// itself at connect and once per fetch TTL; a bridge that has a reason to
		// think the lock changed asks now.
		state, err := d.sess.plugin.RefreshTimelock(d.ctx)
		st.expect(err == nil && state.Active, "the timelock query reports the lock", "%+v %v", state, err)
		st.why("the server announced it (a mex notification), but whatsmeow 2025-12 drops that notification: the plugin learns it from the timelock query (at connect, hourly, or now with RefreshTimelock)")
	}
	_, err := d.sess.plugin.SendMessage(d.ctx, d.alice.PN(), &waE2E.Message{Conversation: proto.String("Still there?")})
	st.note("Alice, a known contact, still gets through: error %v", err)
	st.expect(err == nil, "a message with Alice's tctoken is accepted under the timelock", "%v", err)
	var refused *tctoken.SendError
	for _, name := range []string{"Carol", "Dave"} {
		c := d.srv.AddContact(wamock.ContactOptions{PushName: name})
		mark, sentMark := d.srv.Mark(), len(d.srv.Sent())
		_, err = d.sess.plugin.SendMessage(d.ctx, c.PN(), &waE2E.Message{Conversation: proto.String("Hello " + name)})
		ex := d.exchange(mark, sentMark, err, c)
		st.sent(ex.Message)
		st.received(ex.Ack)
		if !errors.As(err, &refused) {
			st.expect(false, "the refusal is a *tctoken.SendError", "%v", err)
			return
		}
		st.note("SendMessage to %s: %s", name, refused.Diagnosis)
		d.res.TimelockSteps = append(d.res.TimelockSteps, refused.Diagnosis.String())
	}
	d.res.TimelockError = refused
	switch refused.Timelock.Source {
	case tctoken.TimelockFromNotification:
		st.why("the server's notification said so (ends %s); %s", refused.Timelock.Ends.UTC().Format(time.RFC3339), refused.Diagnosis.Hint())
	case tctoken.TimelockFromQuery:
		st.why("the server's answer to the timelock query said so (ends %s); %s", refused.Timelock.Ends.UTC().Format(time.RFC3339), refused.Diagnosis.Hint())
	default:
		st.why("first contacts that carried a valid cstoken were refused while Alice got through: that is the timelock, not a missing token; %s", refused.Diagnosis.Hint())
	}
	st.expect(refused.Diagnosis == tctoken.DiagnosisTimelock, "the second refused first contact is diagnosed as a timelock", "diagnosis %s", refused.Diagnosis)
	st.expect(refused.Recovery.Skipped == "timelock" && !refused.Recovery.Reissued && !refused.Recovery.Resent,
		"nothing is reissued or resent under the timelock", "%+v", refused.Recovery)
	st.note("The inspector (go run ./cmd/tctoken-inspect --jid <number> <database>) shows the same: timelock ACTIVE")
}

func (d *demo) stepPrune(n int) {
	st := d.st
	st.step(n, "Five weeks later, PruneExpired removes Alice's expired token")
	// The bridge is offline meanwhile; on a connect the plugin would prune
	// by itself, which would leave nothing for the call below to show.
	d.srv.WaitIdle(d.device, idleWait)
	d.sess.client.Disconnect()
	d.clock.Advance(5 * week)
	pruned, err := d.sess.plugin.PruneExpired(d.ctx)
	d.res.Pruned = pruned
	entry, getErr := d.sess.plugin.Get(d.ctx, d.alice.PN())
	if entry != nil {
		d.res.TokenAfter = entry.Token
	}
	st.note("PruneExpired removed %d token(s)", pruned)
	st.why("a received token lives for 4 buckets of 7 days, ending on a bucket boundary; the plugin also prunes on every connect and daily")
	st.expect(err == nil && pruned == 1, "one token pruned", "pruned %d, error %v", pruned, err)
	st.expect(getErr == nil && len(d.res.TokenAfter) == 0, "Alice's token is gone", "error %v", getErr)
	st.note("/status now says:")
	d.sess.bridge.HandleLine(d.ctx, "/status")
}

// exchange finds the message our client sent to c since mark and the
// server's ack to it.
func (d *demo) exchange(mark, sentMark int, err error, c *wamock.Contact) exchange {
	ex := exchange{Err: err}
	ex.Message, _ = d.srv.TryWaitFor(mark, isMessageTo(c), demoWait)
	if id := attr(ex.Message, "id"); id != "" {
		ex.Ack = d.waitSent(sentMark, func(node *waBinary.Node) bool {
			return node.Tag == "ack" && attr(node, "class") == "message" && attr(node, "id") == id
		})
	}
	return ex
}

// waitSent waits for a stanza the server sent after sentMark. The server
// records what it sent after writing it, so the client may have reacted
// before it shows up here.
func (d *demo) waitSent(sentMark int, match func(*waBinary.Node) bool) *waBinary.Node {
	var found *waBinary.Node
	waitUntil(demoWait, func() bool {
		sent := d.srv.Sent()
		for _, node := range sent[min(sentMark, len(sent)):] {
			if match(node) {
				found = node
				return true
			}
		}
		return false
	})
	return found
}

// awaitIncoming waits until the bridge printed a message, so that the
// story's lines stay in order.
func (d *demo) awaitIncoming() {
	select {
	case <-d.incoming:
	case <-time.After(demoWait):
		d.st.expect(false, "the bridge printed the incoming message", "nothing within %s", demoWait)
	}
}

// isMessageTo matches a message to either of a contact's addresses:
// whatsmeow may address a phone-number chat by its LID.
func isMessageTo(c *wamock.Contact) func(*waBinary.Node) bool {
	byPN, byLID := wamock.IsMessageTo(c.PN()), wamock.IsMessageTo(c.LID())
	return func(node *waBinary.Node) bool { return byPN(node) || byLID(node) }
}

// isIssuanceTo matches a privacy IQ that issues our token to c.
func isIssuanceTo(c *wamock.Contact) func(*waBinary.Node) bool {
	return func(node *waBinary.Node) bool {
		_, ok := issuanceFor(node, c.PN(), c.LID())
		return ok
	}
}

// expectedCSToken is the cstoken computed here, independently of the
// plugin, from the protocol's definition.
func expectedCSToken(salt []byte, lid types.JID) []byte {
	mac := hmac.New(sha256.New, salt)
	mac.Write([]byte(lid.ToNonAD().User + "@lid"))
	return mac.Sum(nil)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// waitUntil polls cond until it holds or timeout passes; it is for
// background work in the plugin and whatsmeow, not for timing.
func waitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
