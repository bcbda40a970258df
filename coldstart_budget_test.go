package tctoken_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/wamock"
)

// statementLog records every SQL statement that reaches a database through
// its dbutil logger while recording: whatsmeow's (its container is a Child
// of the same *dbutil.Database, which takes the logger with it) and the
// plugin's alike.
type statementLog struct {
	dbutil.DatabaseLogger
	mu         sync.Mutex
	recording  bool
	statements []statement
}

type statement struct {
	method, query string
	// inSend: the statement ran with the send's context (or one derived
	// from it), rather than in a background goroutine of whatsmeow or the
	// plugin.
	inSend bool
}

type sendMarker struct{}

func (l *statementLog) QueryTiming(ctx context.Context, method, query string, args []any, nrows int, d time.Duration, err error) {
	// EndRows closes a query already recorded; <Transaction> sums one up.
	if method != "EndRows" && method != "<Transaction>" {
		l.mu.Lock()
		if l.recording {
			l.statements = append(l.statements, statement{method: method, query: query, inSend: ctx.Value(sendMarker{}) != nil})
		}
		l.mu.Unlock()
	}
	l.DatabaseLogger.QueryTiming(ctx, method, query, args, nrows, d, err)
}

// record runs fn while recording, and returns what it recorded.
func (l *statementLog) record(fn func()) []statement {
	l.mu.Lock()
	l.recording, l.statements = true, nil
	l.mu.Unlock()
	fn()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recording = false
	return l.statements
}

var tableName = regexp.MustCompile(`\b(?:tctoken|whatsmeow)_[a-z_]+\b`)

// class names what a statement touches: "tctoken_tokens read",
// "whatsmeow_sessions write", "whatsmeow_lid_map read", "BEGIN" ...
func (s statement) class() string {
	switch s.method {
	case "Begin", "Commit", "Rollback":
		return strings.ToUpper(s.method)
	}
	tables := tableName.FindAllString(s.query, -1)
	slices.Sort(tables)
	tables = slices.Compact(tables)
	kind := "write"
	if verb := strings.ToUpper(strings.Fields(s.query + " ?")[0]); verb == "SELECT" {
		kind = "read"
	}
	if len(tables) == 0 {
		return "other " + kind
	}
	return strings.Join(tables, "+") + " " + kind
}

func (s statement) plugin() bool { return strings.Contains(s.query, "tctoken_") }

func (s statement) tokenRead(class string) bool {
	return strings.HasSuffix(class, " read") && (strings.Contains(class, "tctoken_tokens") || strings.Contains(class, "whatsmeow_privacy_tokens"))
}

// budgetReport counts statements by class, and logs them.
type budgetReport struct {
	classes                              map[string]int
	total, inSend                        int
	pluginReads, pluginWrites, tokenRead int
}

func summarize(t *testing.T, what string, statements []statement) budgetReport {
	t.Helper()
	r := budgetReport{classes: map[string]int{}}
	for _, s := range statements {
		class := s.class()
		r.classes[class]++
		r.total++
		if s.inSend {
			r.inSend++
		}
		if s.plugin() {
			if strings.HasSuffix(class, " read") {
				r.pluginReads++
			} else {
				r.pluginWrites++
			}
		}
		if s.tokenRead(class) {
			r.tokenRead++
		}
	}
	keys := make([]string, 0, len(r.classes))
	for k := range r.classes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	lines := make([]string, 0, len(keys))
	for _, k := range keys {
		lines = append(lines, fmt.Sprintf("%3d  %s", r.classes[k], k))
	}
	t.Logf("%s: %d statements (%d with the send's context, %d from background work)\n%s",
		what, r.total, r.inSend, r.total-r.inSend, strings.Join(lines, "\n"))
	return r
}

// TestSendBudgetColdStart counts every SQL statement one plugin.SendMessage
// makes in a new process on a filled database (issue 12): a brand-new
// connection pool, whatsmeow container, client and plugin, nothing cached,
// sending to a contact whose token is stored, addressed by LID and by phone
// number. The budget: at most one read of the plugin's tables for the
// uncached contact and no write (no issuance is due: ours went out in this
// bucket); for a second send to the same contact no statement of the
// plugin's and no token-table read at all. What whatsmeow itself reads and
// writes (its LID map, Signal sessions and identities, which its encryption
// needs anyway) is logged.
func TestSendBudgetColdStart(t *testing.T) {
	for _, dialect := range []string{dbtest.DriverSQLite, dbtest.DriverPostgres} {
		t.Run(map[string]string{dbtest.DriverSQLite: "sqlite", dbtest.DriverPostgres: "postgres"}[dialect], func(t *testing.T) {
			for _, by := range []string{"lid", "pn"} {
				t.Run("by-"+by, func(t *testing.T) {
					testSendBudgetColdStart(t, dialect, by)
				})
			}
		})
	}
}

func testSendBudgetColdStart(t *testing.T, driver, by string) {
	var uri string
	if driver == dbtest.DriverSQLite {
		uri = dbtest.SQLiteURI(t)
	} else {
		uri = dbtest.PostgresURI(t)
	}

	// The first process: a bridge that has run for a while. It has a Signal
	// session with alice, her LID-PN mapping, her token (and, as filler,
	// a thousand other contacts' tokens in both tables), and has issued its
	// own token to her in this bucket.
	w := newBareWorld(t, dbtest.Open(t, driver, uri), nil)
	w.start()
	w.connect()
	alice := w.srv.AddContact(wamock.ContactOptions{})
	if err := w.cli.Store.LIDs.PutLIDMapping(w.ctx, alice.LID(), alice.PN()); err != nil {
		t.Fatal(err)
	}
	fillRows(t, w.db, *w.device.ID, 0, 1000, w.clock.Now().Add(-time.Hour).Unix(), "tctoken_tokens", "whatsmeow_privacy_tokens")
	if _, err := w.plugin.IssueTokens(w.ctx, []types.JID{alice.LID()}); err != nil {
		t.Fatal(err)
	}
	w.receiveToken(alice.LID(), "alice-token")
	if _, err := w.plugin.SendMessage(w.ctx, alice.LID(), text("first")); err != nil {
		t.Fatal(err)
	}
	w.stop(w.plugin, w.cli)

	// The new process: its own pool, logging every statement from the start.
	db := dbtest.Open(t, driver, uri)
	log := &statementLog{DatabaseLogger: db.Log}
	db.Log = log
	container := dbtest.WhatsmeowContainer(t, db)
	device, err := container.GetDevice(w.ctx, *w.device.ID)
	if err != nil || device == nil {
		t.Fatalf("load device: %v", err)
	}
	cli := w.srv.NewClient(device, nil)
	plugin, err := tctoken.Enable(w.ctx, cli, db,
		tctoken.WithLogger(zerolog.New(zerolog.MultiLevelWriter(w.logs, zerolog.NewTestWriter(t))).Level(zerolog.DebugLevel)),
		tctoken.WithClock(w.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.stop(plugin, cli) })
	pruned := w.logLines("Pruned expired privacy tokens")
	w.srv.ConnectAndWait(t, cli)
	// The connect-time work (prune, AB props) has run, and whatsmeow has
	// gone quiet: what is recorded below is the send's.
	w.waitLog(pruned+1, "Pruned expired privacy tokens")
	w.srv.WaitIdle(w.deviceNum, 5*time.Second)

	to := alice.LID()
	if by == "pn" {
		to = alice.PN()
	}
	ctx := context.WithValue(w.ctx, sendMarker{}, true)
	send := func(msg string) {
		resp, err := plugin.SendMessage(ctx, to, text(msg))
		if err != nil {
			t.Fatal(err)
		}
		if ack, _ := w.srv.AckFor(resp.ID); !ack.Accepted() {
			t.Fatalf("%s: refused with %d", msg, ack.Error)
		}
		// The token went with it: the read below was the right one.
		if node := w.srv.MessageByID(resp.ID); string(wamock.MessageToken(node)) != "alice-token" {
			t.Fatalf("%s: the message carried no tctoken, or another", msg)
		}
	}

	first := summarize(t, "first send, cold, by "+by, log.record(func() { send("cold") }))
	if first.pluginReads > 1 || first.pluginWrites != 0 {
		t.Errorf("first send to an uncached contact: %d reads and %d writes of the plugin's tables; want at most 1 and 0", first.pluginReads, first.pluginWrites)
	}
	if first.tokenRead > 1 {
		t.Errorf("first send: %d token-table reads; want at most 1", first.tokenRead)
	}
	w.srv.WaitIdle(w.deviceNum, 5*time.Second)

	second := summarize(t, "second send, cached, by "+by, log.record(func() { send("warm") }))
	if second.pluginReads+second.pluginWrites != 0 || second.tokenRead != 0 {
		t.Errorf("second send: %d reads and %d writes of the plugin's tables, %d token-table reads; want none",
			second.pluginReads, second.pluginWrites, second.tokenRead)
	}
}
