package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/wamock"
)

// TestInspectNewChatCap: a new-chat cap a real client fetched through the
// plugin shows in the text and the JSON, from the database alone, and in
// --jid's explanation.
func TestInspectNewChatCap(t *testing.T) {
	for name, open := range map[string]func(testing.TB) (string, string){
		"sqlite":   func(t testing.TB) (string, string) { return dbtest.DriverSQLite, dbtest.SQLiteURI(t) },
		"postgres": func(t testing.TB) (string, string) { return dbtest.DriverPostgres, dbtest.PostgresURI(t) },
	} {
		t.Run(name, func(t *testing.T) {
			driver, uri := open(t)
			ctx := context.Background()
			db := dbtest.Open(t, driver, uri)
			srv := wamock.NewServer(t)
			device, err := srv.NewDevice(ctx, dbtest.WhatsmeowContainer(t, db))
			if err != nil {
				t.Fatal(err)
			}
			srv.SetABProps(wamock.ABProps{Hash: "cap", Props: map[int]string{tctoken.PropNewChatCapEnabled: "1"}})
			end := time.Unix(1_772_592_000, 0)
			srv.SetNewChatCap(wamock.NewChatCap{Status: "CAPPED", Total: wamock.Quota(50), Used: wamock.Quota(50), CycleEnd: end})
			cli := srv.NewClient(device, nil)
			plugin, err := tctoken.Enable(ctx, cli, db)
			if err != nil {
				t.Fatal(err)
			}
			srv.ConnectAndWait(t, cli)
			waitFor(t, "the new-chat cap", func() bool { return plugin.NewChatCap().Capped() })
			contact := srv.AddContact(wamock.ContactOptions{})
			plugin.Close()
			srv.WaitIdle(device.ID.Device, time.Second)
			cli.Disconnect()

			now := fmt.Sprint(time.Now().Unix())
			out := inspectOut(t, "--now", now, uri)
			want := "new-chat cap: CAPPED, 50 of 50 new chats used, cycle ends " + end.UTC().Format(time.RFC3339) + " (from query at "
			if !strings.Contains(out, want) || !strings.Contains(out, "AB props: on)") {
				t.Errorf("text lacks %q:\n%s", want, out)
			}
			var report Report
			if err := json.Unmarshal([]byte(inspectOut(t, "--json", "--now", now, "--jid", contact.LID().String(), uri)), &report); err != nil {
				t.Fatal(err)
			}
			if len(report.Accounts) != 1 {
				t.Fatalf("%d accounts", len(report.Accounts))
			}
			acc := report.Accounts[0]
			if nc := acc.NewChatCap; !nc.Capped() || nc.Limit != 50 || nc.Used != 50 || !nc.CycleEnd.Equal(end) || nc.Source != tctoken.NewChatCapFromQuery {
				t.Errorf("JSON new-chat cap %+v", nc)
			}
			if p := acc.Policy.NewChatCap; !p.Enabled || p.FetchTTL != time.Hour || p.FirstWarningPercent != 50 {
				t.Errorf("JSON policy %+v", p)
			}
			if e := acc.Explained; e == nil || !e.NewChatCap.Capped() || !e.NewChatCapPolicy.Enabled {
				t.Errorf("explained: %+v", e)
			}
		})
	}
}
