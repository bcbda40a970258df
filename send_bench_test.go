package tctoken_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	wsqlstore "go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/internal/dbtest"
	tcsqlstore "github.com/tctoken/tctoken/sqlstore"
	"github.com/tctoken/tctoken/wamock"
)

// BenchmarkSend sends 1:1 text messages with a real whatsmeow client
// connected to wamock: plugin.SendMessage on one account beside plain
// Client.SendMessage on a second account without the plugin, in the same
// run, on the same database, each account's tables already holding
// benchRows() tokens. Two accounts rather than one client with the plugin
// closed: a closed plugin still stands in front of whatsmeow's store (its
// interposer passes through), so the plain side would not be plain. Each
// account has its own wamock server (a phone, no other companion), so both
// sides encrypt for the same devices and do the same whatsmeow work; what
// differs is what the plugin adds, and that whatsmeow 2025-12 alone reads
// its token table on every send where the plugin's cache answers.
//
// Every contact holds a valid token on both sides (under the LID in the
// plugin's tables, and wherever whatsmeow 2025-12 would look it up for the
// address sent to), so both sides attach a <tctoken>: the benchmark checks
// it. The plugin's side issued our token in this sender bucket, so no
// issuance is due: the figure is the send itself.
//
//   - cold: a contact the plugin's cache has never seen, and that this
//     client process has not sent to yet. A Signal session exists (an
//     earlier process sent to it), so on both sides whatsmeow fetches the
//     contact's device list (one usync) and encrypts; the plugin reads one
//     row from its table of benchRows() tokens, whatsmeow 2025-12 reads its
//     own.
//   - warm: the same contact again and again.
//
// To a LID and to a phone number whose LID whatsmeow's LID map knows.
// bench/run prints the ratios.
func BenchmarkSend(b *testing.B) {
	forBenchDialects(b, func(b *testing.B, dialect string) {
		w := newSendWorld(b, dialect)
		for _, temp := range []string{"cold", "warm"} {
			for kind, addr := range addrKinds {
				for _, side := range w.sides {
					b.Run(temp+"/"+addr+"/"+side.name, func(b *testing.B) {
						if temp == "warm" {
							side.benchWarm(b, kind)
						} else {
							side.benchCold(b, kind)
						}
					})
				}
			}
		}
	})
}

// The two ways of addressing a contact.
const (
	addrLID = iota
	addrPN
)

var addrKinds = [...]string{addrLID: "lid", addrPN: "pn"}

// sendRestock is how many cold contacts of each kind one restock prepares.
const sendRestock = 100

// sendWorld is the two accounts on one database.
type sendWorld struct {
	ctx       context.Context
	db        *dbutil.Database
	container *wsqlstore.Container
	now       time.Time
	sides     []*sendSide
}

// sendSide is one account: its server, its device and its client, with the
// plugin (plugin side) or without (whatsmeow side).
type sendSide struct {
	w         *sendWorld
	name      string
	withPlug  bool
	srv       *wamock.Server
	jid       types.JID
	deviceNum uint16
	cli       *whatsmeow.Client
	plugin    *tctoken.Plugin
	logs      *syncBuffer
	// cold holds, per address kind, contacts the current client has not
	// sent to; warm, one contact per kind that benchWarm sends to.
	cold   [2][]types.JID
	warm   [2]types.JID
	warmed bool // the warm contacts have a session
}

func newSendWorld(b *testing.B, dialect string) *sendWorld {
	b.Helper()
	db := benchDB(b, dialect)
	w := &sendWorld{ctx: context.Background(), db: db, container: dbtest.WhatsmeowContainer(b, db), now: time.Now()}
	if err := tcsqlstore.New(db).Upgrade(w.ctx); err != nil {
		b.Fatal(err)
	}
	w.sides = []*sendSide{
		w.newSide(b, "plugin", true, wamock.NewServer(b)),
		w.newSide(b, "whatsmeow", false, wamock.NewServer(b, wamock.WithOwnPN("15550000002"), wamock.WithOwnLID("100000000000002"))),
	}
	b.Cleanup(func() {
		for _, side := range w.sides {
			side.stop()
		}
	})
	return w
}

func (w *sendWorld) newSide(b *testing.B, name string, withPlug bool, srv *wamock.Server) *sendSide {
	b.Helper()
	device, err := srv.NewDevice(w.ctx, w.container)
	if err != nil {
		b.Fatal(err)
	}
	s := &sendSide{w: w, name: name, withPlug: withPlug, srv: srv, jid: *device.ID, deviceNum: device.ID.Device, logs: &syncBuffer{}}
	// The account's tables hold benchRows() tokens, both of them (as the
	// plugin's write-through leaves them), and the plugin has long since
	// imported whatsmeow's tokens.
	(&scaleWorld{ctx: w.ctx, db: w.db, now: w.now}).fill(b, s.jid, benchRows())
	if withPlug {
		if _, err := w.db.Exec(w.ctx, "INSERT INTO tctoken_imports (our_jid, imported_at, row_count) VALUES ($1, $2, 0)", s.jid.String(), w.now.Unix()); err != nil {
			b.Fatal(err)
		}
		// A bridge that has the salt: no backfill runs on connect.
		if err := tcsqlstore.New(w.db).ForAccount(s.jid).SetAppStateSalt(w.ctx, []byte("bench-salt")); err != nil {
			b.Fatal(err)
		}
	}
	for kind := range addrKinds {
		s.warm[kind] = s.addContacts(b, kind, 1)[0]
	}
	s.restock(b)
	return s
}

// addContacts adds n contacts addressed by kind, with their LID mappings
// known and a valid token stored for each, where the side reads it.
func (s *sendSide) addContacts(b *testing.B, kind, n int) []types.JID {
	b.Helper()
	tokenTS := s.w.now.Add(-time.Hour).Unix()
	senderTS := time.Now().Unix()
	var mappings []store.LIDMapping
	var plugin, whatsmeow []string
	out := make([]types.JID, n)
	for i := range out {
		c := s.srv.AddContact(wamock.ContactOptions{})
		mappings = append(mappings, store.LIDMapping{LID: c.LID(), PN: c.PN()})
		out[i] = c.LID()
		if kind == addrPN {
			out[i] = c.PN()
		}
		// The plugin files every token under the LID, and writes it through
		// to whatsmeow's table there. whatsmeow 2025-12 alone reads the
		// address it sends to.
		key := c.LID()
		if !s.withPlug {
			key = out[i]
		}
		plugin = append(plugin, fmt.Sprintf("('%s', '%s', '\\x01', %d, %d, %d)", s.jid, c.LID(), tokenTS, senderTS, tokenTS))
		whatsmeow = append(whatsmeow, fmt.Sprintf("('%s', '%s', '\\x01', %d)", s.jid, key, tokenTS))
	}
	if err := s.w.container.LIDMap.PutManyLIDMappings(s.w.ctx, mappings); err != nil {
		b.Fatal(err)
	}
	stmts := []string{"INSERT INTO whatsmeow_privacy_tokens (our_jid, their_jid, token, timestamp) VALUES " + strings.Join(whatsmeow, ", ")}
	if s.withPlug {
		stmts = append(stmts, "INSERT INTO tctoken_tokens (our_jid, their_jid, token, token_ts, sender_ts, updated_at) VALUES "+strings.Join(plugin, ", "))
	}
	for _, stmt := range stmts {
		if _, err := s.w.db.Exec(s.w.ctx, stmt); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// restock adds sendRestock cold contacts of each kind and gives each a
// Signal session: a client without the plugin sends each one message, then
// goes, as a bridge process that restarted. A new client (and plugin) then
// starts, so every contact not sent to since is cold again.
func (s *sendSide) restock(b *testing.B) {
	b.Helper()
	s.stop()
	var fresh []types.JID
	if !s.warmed {
		fresh = append(fresh, s.warm[:]...)
		s.warmed = true
	}
	for kind := range addrKinds {
		added := s.addContacts(b, kind, sendRestock)
		s.cold[kind] = append(s.cold[kind], added...)
		fresh = append(fresh, added...)
	}
	prep := s.srv.NewClient(s.reloadDevice(b), nil)
	s.srv.ConnectAndWait(b, prep)
	for _, to := range fresh {
		if _, err := prep.SendMessage(s.w.ctx, to, text("session")); err != nil {
			b.Fatalf("%s: first message to %s: %v", s.name, to, err)
		}
	}
	s.srv.WaitIdle(s.deviceNum, 5*time.Second)
	prep.Disconnect()
	s.start(b)
}

// reloadDevice reads the device from whatsmeow's store, as a new process.
func (s *sendSide) reloadDevice(b *testing.B) *store.Device {
	b.Helper()
	device, err := s.w.container.GetDevice(s.w.ctx, s.jid)
	if err != nil || device == nil {
		b.Fatalf("reload device %s: %v", s.jid, err)
	}
	return device
}

// start is a new client (and plugin), connected, its connect-time work done.
func (s *sendSide) start(b *testing.B) {
	b.Helper()
	s.cli = s.srv.NewClient(s.reloadDevice(b), nil)
	pruned := 0
	if s.withPlug {
		// Info level: what a bridge runs with. The debug line of every send
		// must cost nothing then.
		log := zerolog.New(s.logs).Level(zerolog.InfoLevel)
		pruned = strings.Count(s.logs.String(), "Pruned expired privacy tokens")
		var err error
		if s.plugin, err = tctoken.Enable(s.w.ctx, s.cli, s.w.db, tctoken.WithLogger(log)); err != nil {
			b.Fatal(err)
		}
	}
	s.srv.ConnectAndWait(b, s.cli)
	if s.withPlug {
		eventually(b, "the connect-time prune", func() bool {
			return strings.Count(s.logs.String(), "Pruned expired privacy tokens") > pruned
		})
	}
	s.srv.WaitIdle(s.deviceNum, 5*time.Second)
}

func (s *sendSide) stop() {
	if s.cli != nil {
		s.stopClient(s.cli, s.plugin)
		s.cli, s.plugin = nil, nil
	}
}

func (s *sendSide) stopClient(cli *whatsmeow.Client, plugin *tctoken.Plugin) {
	if plugin != nil {
		plugin.Close()
	}
	s.srv.WaitIdle(s.deviceNum, 5*time.Second)
	cli.Disconnect()
}

// send is the side's SendMessage.
func (s *sendSide) send(b *testing.B, to types.JID) whatsmeow.SendResponse {
	var resp whatsmeow.SendResponse
	var err error
	if s.plugin != nil {
		resp, err = s.plugin.SendMessage(s.w.ctx, to, text("benchmark"))
	} else {
		resp, err = s.cli.SendMessage(s.w.ctx, to, text("benchmark"))
	}
	if err != nil {
		b.Fatalf("%s: send to %s: %v", s.name, to, err)
	}
	return resp
}

// checkToken fails unless the message carried the contact's token: both
// sides must do the same thing for the ratio to mean anything.
func (s *sendSide) checkToken(b *testing.B, resp whatsmeow.SendResponse) {
	b.Helper()
	if node := s.srv.MessageByID(resp.ID); node == nil || len(childBytes(node, "tctoken")) == 0 {
		b.Fatalf("%s: message %s went without the contact's tctoken", s.name, resp.ID)
	}
}

func (s *sendSide) benchCold(b *testing.B, kind int) {
	var resp whatsmeow.SendResponse
	for b.Loop() {
		if len(s.cold[kind]) == 0 {
			b.StopTimer()
			s.restock(b)
			b.StartTimer()
		}
		to := s.cold[kind][0]
		s.cold[kind] = s.cold[kind][1:]
		resp = s.send(b, to)
	}
	s.checkToken(b, resp)
}

func (s *sendSide) benchWarm(b *testing.B, kind int) {
	to := s.warm[kind]
	s.checkToken(b, s.send(b, to)) // the untimed first send warms every cache
	var resp whatsmeow.SendResponse
	for b.Loop() {
		resp = s.send(b, to)
	}
	s.checkToken(b, resp)
}
