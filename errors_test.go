package tctoken_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/internal/dbtest"
	tcsqlstore "github.com/tctoken/tctoken/sqlstore"
	"github.com/tctoken/tctoken/wamock"
)

// wantIs fails the test unless err matches every one of targets with
// errors.Is: what a caller of the public API can rely on.
func wantIs(t *testing.T, call string, err error, targets ...error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %v", call, targets)
		return
	}
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Errorf("%s: %v is not errors.Is %v", call, err, target)
		}
	}
}

// TestEnableErrors: each way Enable and EnableWithSQL fail matches an
// exported sentinel, and the zero Option is harmless.
func TestEnableErrors(t *testing.T) {
	ctx := context.Background()
	db := dbtest.SQLite(t)
	srv := wamock.NewServer(t)
	cli, _ := srv.QuickUnconnectedClient(t)

	_, err := tctoken.Enable(ctx, nil, db)
	wantIs(t, "Enable(nil client)", err, tctoken.ErrInvalidArgument)
	_, err = tctoken.Enable(ctx, cli, nil)
	wantIs(t, "Enable(nil database)", err, tctoken.ErrInvalidArgument)
	raw, _ := dbtest.Raw(db)
	_, err = tctoken.EnableWithSQL(ctx, cli, raw, "nosuchdialect")
	wantIs(t, "EnableWithSQL(unknown dialect)", err, tctoken.ErrInvalidArgument)
	_, err = tctoken.Enable(ctx, cli, db, tctoken.WithMetrics(nil))
	wantIs(t, "Enable(WithMetrics(nil))", err, tctoken.ErrInvalidArgument)

	plugin, err := tctoken.Enable(ctx, cli, db, tctoken.Option{})
	if err != nil {
		t.Fatalf("Enable with the zero Option: %v", err)
	}
	defer plugin.Close()
	_, err = tctoken.Enable(ctx, cli, db)
	wantIs(t, "Enable twice", err, tctoken.ErrAlreadyEnabled)

	// A database that is gone: the plugin's tables cannot be created.
	closedDB := dbtest.SQLite(t)
	closedRaw, _ := dbtest.Raw(closedDB)
	if err := closedRaw.Close(); err != nil {
		t.Fatal(err)
	}
	other, _ := srv.QuickUnconnectedClient(t)
	_, err = tctoken.Enable(ctx, other, closedDB)
	wantIs(t, "Enable(closed database)", err, tctoken.ErrDatabase)
}

// failingSaltRead fails the salt read that loading the account begins with.
type failingSaltRead struct{ tctoken.AccountStore }

var errSaltRead = errors.New("injected: the salt cannot be read")

func (failingSaltRead) GetSalt(context.Context) ([]byte, tcsqlstore.SaltSource, bool, error) {
	return nil, "", false, errSaltRead
}

// TestEnableBindError: a logged-in client whose account state cannot be
// loaded fails Enable with ErrNotBound and ErrDatabase, the cause wrapped.
func TestEnableBindError(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newBareWorld(t, db, nil)
		cli := w.srv.NewClient(w.device, nil)
		_, err := tctoken.Enable(w.ctx, cli, db, tctoken.WithStoreWrapper(func(s tctoken.AccountStore) tctoken.AccountStore {
			return failingSaltRead{s}
		}))
		wantIs(t, "Enable(account state unreadable)", err, tctoken.ErrNotBound, tctoken.ErrDatabase, errSaltRead)
	})
}

// TestErrorsBeforePairing: every call that needs the account says
// ErrNotLoggedIn on a client that has not paired.
func TestErrorsBeforePairing(t *testing.T) {
	db := dbtest.SQLite(t)
	container := dbtest.WhatsmeowContainer(t, db)
	cli := whatsmeow.NewClient(container.NewDevice(), nil)
	ctx := context.Background()
	plugin, err := tctoken.Enable(ctx, cli, db)
	if err != nil {
		t.Fatal(err)
	}
	defer plugin.Close()
	pn := types.NewJID("15551234567", types.DefaultUserServer)
	_, err = plugin.IssueTokens(ctx, []types.JID{pn})
	wantIs(t, "IssueTokens", err, tctoken.ErrNotLoggedIn)
	_, err = plugin.PruneExpired(ctx)
	wantIs(t, "PruneExpired", err, tctoken.ErrNotLoggedIn)
	_, err = plugin.Get(ctx, pn)
	wantIs(t, "Get", err, tctoken.ErrNotLoggedIn)
	_, err = plugin.GetAllJIDs(ctx)
	wantIs(t, "GetAllJIDs", err, tctoken.ErrNotLoggedIn)
	_, err = plugin.Explain(ctx, pn)
	wantIs(t, "Explain", err, tctoken.ErrNotLoggedIn)
	_, err = plugin.RefreshTimelock(ctx)
	wantIs(t, "RefreshTimelock", err, tctoken.ErrNotLoggedIn)
	_, err = plugin.RefreshNewChatCap(ctx)
	wantIs(t, "RefreshNewChatCap", err, tctoken.ErrNotLoggedIn)
}

// TestErrorsDatabaseOutage: with the plugin's tables gone, every call that
// reads or writes them says ErrDatabase, and an issuance the server
// accepted says ErrNotRecorded too.
func TestErrorsDatabaseOutage(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		w.waitLog(1, "Imported whatsmeow's privacy tokens")
		alice := w.srv.AddContact(wamock.ContactOptions{})
		for _, table := range []string{"tctoken_tokens", "tctoken_nct_salt"} {
			if _, err := db.Exec(w.ctx, "ALTER TABLE "+table+" RENAME TO "+table+"_away"); err != nil {
				t.Fatal(err)
			}
		}
		_, err := w.plugin.PruneExpired(w.ctx)
		wantIs(t, "PruneExpired", err, tctoken.ErrDatabase)
		_, err = w.plugin.Get(w.ctx, alice.LID())
		wantIs(t, "Get", err, tctoken.ErrDatabase)
		_, err = w.plugin.GetAllJIDs(w.ctx)
		wantIs(t, "GetAllJIDs", err, tctoken.ErrDatabase)
		_, err = w.plugin.Explain(w.ctx, alice.LID())
		wantIs(t, "Explain", err, tctoken.ErrDatabase)
		_, err = w.plugin.IssueTokens(w.ctx, []types.JID{alice.LID()})
		wantIs(t, "IssueTokens", err, tctoken.ErrNotRecorded, tctoken.ErrDatabase)
	})
}

// TestIssueTokensErrors: each way an issuance fails is told apart: a JID
// no token goes to, no connection, the server's error reply, a reply of
// the wrong shape.
func TestIssueTokensErrors(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t))
	alice := w.srv.AddContact(wamock.ContactOptions{})
	_, err := w.plugin.IssueTokens(w.ctx, []types.JID{alice.LID()})
	wantIs(t, "IssueTokens before Connect", err, tctoken.ErrDisconnected, whatsmeow.ErrNotConnected)

	w.connect()
	_, err = w.plugin.IssueTokens(w.ctx, []types.JID{types.NewJID("120363000000000000", types.GroupServer)})
	wantIs(t, "IssueTokens(group)", err, tctoken.ErrIneligible)

	w.srv.SetPrivacyHandler(func(iq *waBinary.Node) *waBinary.Node { return wamock.ErrorIQ(iq, 500, "internal-server-error") })
	_, err = w.plugin.IssueTokens(w.ctx, []types.JID{alice.LID()})
	var iqErr *tctoken.IQError
	if !errors.As(err, &iqErr) || iqErr.Code != 500 {
		t.Errorf("IssueTokens(server error): %v, want an *IQError with code 500", err)
	}

	w.srv.SetPrivacyHandler(func(iq *waBinary.Node) *waBinary.Node {
		return &waBinary.Node{Attrs: waBinary.Attrs{"type": "neither"}}
	})
	_, err = w.plugin.IssueTokens(w.ctx, []types.JID{alice.LID()})
	wantIs(t, "IssueTokens(malformed reply)", err, tctoken.ErrMalformedReply)
}

// TestSendErrorsPassThrough: SendMessage returns a *SendError for a 463 and
// whatsmeow's own error otherwise; SubscribePresence returns whatsmeow's.
func TestSendErrorsPassThrough(t *testing.T) {
	w := newWorld(t, dbtest.SQLite(t), tctoken.WithRecovery(tctoken.Recovery{}))
	bob := w.srv.AddContact(wamock.ContactOptions{})
	_, err := w.plugin.SendMessage(w.ctx, bob.LID(), text("hello"))
	wantIs(t, "SendMessage before Connect", err, whatsmeow.ErrNotConnected)
	err = w.plugin.SubscribePresence(w.ctx, bob.LID())
	wantIs(t, "SubscribePresence before Connect", err, whatsmeow.ErrNotConnected)

	events := make(chan *tctoken.SendDiagnosed, 1)
	w.cli.AddEventHandler(func(evt any) {
		if diagnosed, ok := evt.(*tctoken.SendDiagnosed); ok {
			events <- diagnosed
		}
	})
	w.connect()
	w.srv.SetMessageRule(wamock.RequireToken())
	_, err = w.plugin.SendMessage(w.ctx, bob.LID(), text("hello"))
	var refused *tctoken.SendError
	if !errors.As(err, &refused) || refused.Diagnosis != tctoken.DiagnosisNoSalt {
		t.Fatalf("SendMessage refused with 463: %v, want a *SendError diagnosed no_salt", err)
	}
	wantIs(t, "SendMessage refused with 463", err, whatsmeow.ErrServerReturnedError)
	// The event is a copy of the error returned, whatsmeow's error included.
	select {
	case evt := <-events:
		if evt.SendError == refused || !reflect.DeepEqual(*evt.SendError, *refused) {
			t.Errorf("SendDiagnosed %+v, want a copy of the SendError %+v", evt.SendError, refused)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no SendDiagnosed event for the 463")
	}
}

// TestMetricsRegistryConflict: a registry that already holds a collector of
// the same name with other labels refuses the plugin's; Enable says so.
func TestMetricsRegistryConflict(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "tctoken_tokens_attached_total", Help: "taken"}))
	srv := wamock.NewServer(t)
	cli, _ := srv.QuickUnconnectedClient(t)
	_, err := tctoken.Enable(context.Background(), cli, dbtest.SQLite(t), tctoken.WithMetrics(reg))
	wantIs(t, "Enable(WithMetrics(conflicting registry))", err, tctoken.ErrInvalidArgument)
}
