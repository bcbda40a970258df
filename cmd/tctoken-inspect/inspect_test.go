package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/upgrades"
	"github.com/tctoken/tctoken/wamock"
)

var (
	testSalt   = []byte("whatsapp_nct_salt_example")
	aliceToken = []byte("alice-token-bytes")
)

// filled is a database a real client on wamock filled through the plugin:
// a salt from app state, a token from alice, our issuance to bob.
type filled struct {
	uri, driver  string
	account      types.JID
	alice, bob   *wamock.Contact
	tokenTS, now time.Time
}

func fill(t *testing.T, driver, uri string) filled {
	t.Helper()
	ctx := context.Background()
	db := dbtest.Open(t, driver, uri)
	srv := wamock.NewServer(t)
	container := dbtest.WhatsmeowContainer(t, db)
	device, err := srv.NewDevice(ctx, container)
	if err != nil {
		t.Fatal(err)
	}
	cli := srv.NewClient(device, nil)
	plugin, err := tctoken.Enable(ctx, cli, db)
	if err != nil {
		t.Fatal(err)
	}
	srv.ConnectAndWait(t, cli)
	f := filled{uri: uri, driver: driver, account: *device.ID, now: time.Now()}
	if err = srv.Phone().ShareAppStateKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if err = srv.Phone().SetNCTSalt(ctx, testSalt); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the salt", plugin.HasSalt)
	// The plugin asks for the reach-out timelock at connect; the server
	// says there is none, which is recorded.
	waitFor(t, "the timelock query's answer", func() bool { return plugin.Timelock().Source == tctoken.TimelockFromQuery })
	f.alice, f.bob = srv.AddContact(wamock.ContactOptions{}), srv.AddContact(wamock.ContactOptions{})
	f.tokenTS = time.Now().Add(-time.Hour).Truncate(time.Second)
	if err = srv.PushPrivacyTokenAndWait(ctx, f.alice.LID(), types.EmptyJID, srv.OwnLID(), aliceToken, f.tokenTS.Unix()); err != nil {
		t.Fatal(err)
	}
	// To the PN: the plugin looks the LID up, and whatsmeow maps it.
	if _, err = plugin.SendMessage(ctx, f.bob.PN(), &waE2E.Message{Conversation: proto.String("hi")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "our issuance to bob", func() bool {
		e, err := plugin.Get(ctx, f.bob.LID())
		return err == nil && e != nil && !e.SenderTimestamp.IsZero()
	})
	plugin.Close()
	srv.WaitIdle(device.ID.Device, time.Second)
	cli.Disconnect()
	return f
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func forEachDialect(t *testing.T, fn func(t *testing.T, f filled)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, fill(t, dbtest.DriverSQLite, dbtest.SQLiteURI(t)))
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, fill(t, dbtest.DriverPostgres, dbtest.PostgresURI(t)))
	})
}

func inspectOut(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), args, &out, &errOut); code != 0 {
		t.Fatalf("tctoken-inspect %v: exit %d: %s", args, code, errOut.String())
	}
	s := out.String()
	// Never the secrets themselves.
	for _, secret := range [][]byte{aliceToken, testSalt} {
		if strings.Contains(s, string(secret)) {
			t.Fatalf("output carries a secret:\n%s", s)
		}
	}
	return s
}

func TestInspectText(t *testing.T) {
	forEachDialect(t, func(t *testing.T, f filled) {
		now := fmt.Sprint(f.now.Unix())
		out := inspectOut(t, "--now", now, f.uri)
		expiry := time.Unix(tctoken.DefaultTiming().TokenExpiry(f.tokenTS.Unix()), 0).UTC().Format(time.RFC3339)
		for _, want := range []string{
			"account " + f.account.String(),
			"salt:     present (source app_state, hash " + tctoken.ShortHash(testSalt),
			"props:    fetched ",
			"policy:   receiver 4 x 604800s, sender 4 x 604800s, tctoken on, cstoken on, issue to LID on",
			"import:   done ",
			"timelock: not active (last word from query at ",
			"contacts: 2",
			f.alice.LID().String(),
			tctoken.ShortHash(aliceToken),
			f.tokenTS.UTC().Format(time.RFC3339) + "  " + expiry + "  yes",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("text lacks %q:\n%s", want, out)
			}
		}
		// Bob: no token, our issuance recorded, none due in this bucket.
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, f.bob.LID().String()) && (!strings.Contains(line, "  -  ") || !strings.HasSuffix(line, "no")) {
				t.Errorf("bob's row: %q", line)
			}
		}

		explained := inspectOut(t, "--now", now, "--jid", "+"+f.bob.PN().User, f.uri)
		for _, want := range []string{
			"contact:  " + f.bob.PN().String() + " (stored under " + f.bob.LID().String() + ")",
			"LID:            " + f.bob.LID().String(),
			"token:          none",
			"next message:   cstoken (cstoken_no_tctoken: no tctoken stored; cstoken over LID)",
			"if refused 463: no_token: ",
		} {
			if !strings.Contains(explained, want) {
				t.Errorf("--jid text lacks %q:\n%s", want, explained)
			}
		}
	})
}

func TestInspectJSON(t *testing.T) {
	forEachDialect(t, func(t *testing.T, f filled) {
		now := fmt.Sprint(f.now.Unix())
		var report Report
		if err := json.Unmarshal([]byte(inspectOut(t, "--json", "--now", now, "--jid", f.alice.LID().String(), f.uri)), &report); err != nil {
			t.Fatal(err)
		}
		if len(report.Accounts) != 1 {
			t.Fatalf("%d accounts", len(report.Accounts))
		}
		acc := report.Accounts[0]
		if acc.Account != f.account.String() || !acc.Salt.Present || acc.Salt.Source != "app_state" || acc.Salt.Hash != tctoken.ShortHash(testSalt) {
			t.Errorf("account and salt: %+v", acc)
		}
		if acc.Props == nil || acc.Props.Fetched.IsZero() || !acc.Import.Done || acc.Timelock.Active || len(acc.Contacts) != 2 {
			t.Errorf("props, import, timelock, contacts: %+v", acc)
		}
		var alice ContactReport
		for _, c := range acc.Contacts {
			if c.Contact == f.alice.LID().String() {
				alice = c
			}
		}
		if alice.Token != tctoken.ShortHash(aliceToken) || !alice.TokenTimestamp.Equal(f.tokenTS) || !alice.TokenValid || alice.TokenExpires.Before(f.now) {
			t.Errorf("alice: %+v", alice)
		}
		e := acc.Explained
		if e == nil || e.Attach != "tctoken" || e.Cause != "valid_tctoken" || e.IfRefused != tctoken.DiagnosisTokenRefused || e.Token != alice.Token || !e.SaltPresent {
			t.Errorf("explained: %+v", e)
		}
	})
}

// TestInspectIsReadOnly: the inspector's connection cannot write.
func TestInspectIsReadOnly(t *testing.T) {
	forEachDialect(t, func(t *testing.T, f filled) {
		db, err := openReadOnly(f.uri)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err = db.Exec(context.Background(), `DELETE FROM tctoken_tokens`); err == nil {
			t.Fatal("a delete went through the inspector's connection")
		}
	})
}

// The inspector looks for the plugin's tables where its statements find
// them, on the connection's search_path: a current tctoken schema in another
// schema its role may read does not make an empty one look enabled.
func TestInspectSeesOnlyItsSchema(t *testing.T) {
	uri := dbtest.PostgresURI(t)
	db := dbtest.Open(t, dbtest.DriverPostgres, uri)
	dbtest.ReadableSchema(t, db,
		`CREATE TABLE `+upgrades.VersionTable+` (version INTEGER, compat INTEGER)`,
		fmt.Sprintf(`INSERT INTO %s (version, compat) VALUES (%d, %d)`, upgrades.VersionTable, upgrades.Latest(), upgrades.Latest()))
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{uri}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "no tctoken tables") {
		t.Errorf("tctoken-inspect on an empty schema: exit %d: %s; want exit 1, no tctoken tables", code, errOut.String())
	}
}
