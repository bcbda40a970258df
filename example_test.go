package tctoken_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/store/sqlstore/upgrades"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/tctoken/tctoken"
	tcsqlstore "github.com/tctoken/tctoken/sqlstore"
)

// A bridge holds one database for its own tables, whatsmeow's and the
// plugin's; enabling the plugin is one line after creating the client.
func ExampleEnable() {
	ctx := context.Background()
	rawDB, err := sql.Open("sqlite3", "file:bridge.db?_foreign_keys=on")
	if err != nil {
		panic(err)
	}
	db, err := dbutil.NewWithDB(rawDB, "sqlite3")
	if err != nil {
		panic(err)
	}
	container := sqlstore.NewWithWrappedDB(db.Child("whatsmeow_version", upgrades.Table, nil), nil)
	if err = container.Upgrade(ctx); err != nil {
		panic(err)
	}
	device, err := container.GetFirstDevice(ctx)
	if err != nil {
		panic(err)
	}
	client := whatsmeow.NewClient(device, nil)

	plugin, err := tctoken.Enable(ctx, client, db)
	if err != nil {
		panic(err)
	}
	defer plugin.Close()
	_ = client.Connect()
}

// A bridge that holds a plain *sql.DB names its dialect.
func ExampleEnableWithSQL() {
	ctx := context.Background()
	rawDB, _ := sql.Open("postgres", "postgres://bridge@localhost/bridge?sslmode=disable")
	container := sqlstore.NewWithDB(rawDB, "postgres", nil)
	_ = container.Upgrade(ctx)
	device, _ := container.GetFirstDevice(ctx)
	client := whatsmeow.NewClient(device, nil)

	plugin, err := tctoken.EnableWithSQL(ctx, client, rawDB, "postgres",
		tctoken.WithPropOverride(tctoken.PropNCTSend, "1"))
	if err != nil {
		panic(err)
	}
	defer plugin.Close()
}

// SendMessage is a drop-in for Client.SendMessage that also attaches the
// cstoken on first contact.
func ExamplePlugin_SendMessage() {
	var plugin *tctoken.Plugin // from tctoken.Enable
	ctx := context.Background()
	to := types.NewJID("15551234567", types.DefaultUserServer)
	resp, err := plugin.SendMessage(ctx, to, &waE2E.Message{Conversation: proto.String("hello")},
		whatsmeow.SendRequestExtra{ID: "3EB0C0FFEE"})
	if err != nil {
		fmt.Println("send failed:", err)
		return
	}
	fmt.Println("sent at", resp.Timestamp)
}

// Decide tells what a send would attach, without sending.
func ExamplePlugin_Decide() {
	var plugin *tctoken.Plugin // from tctoken.Enable
	d := plugin.Decide(context.Background(), types.NewJID("123456789012345", types.HiddenUserServer))
	fmt.Println(d.Attach, d.Reason)
}

// IssueTokens gives our token to contacts now, for example to contacts a
// bridge is about to message in bulk.
func ExamplePlugin_IssueTokens() {
	var plugin *tctoken.Plugin // from tctoken.Enable
	received, err := plugin.IssueTokens(context.Background(), []types.JID{
		types.NewJID("123456789012345", types.HiddenUserServer),
		types.NewJID("15551234567", types.DefaultUserServer),
	})
	fmt.Println(len(received), err)
}

// PruneExpired runs on every connect anyway; a bridge may also run it from
// an admin command.
func ExamplePlugin_PruneExpired() {
	var plugin *tctoken.Plugin // from tctoken.Enable
	removed, err := plugin.PruneExpired(context.Background())
	fmt.Println(removed, err)
}

// Get finds the same entry by PN or by LID.
func ExamplePlugin_Get() {
	var plugin *tctoken.Plugin // from tctoken.Enable
	entry, err := plugin.Get(context.Background(), types.NewJID("15551234567", types.DefaultUserServer))
	if err != nil || entry == nil {
		fmt.Println("no token held")
		return
	}
	fmt.Println("token from", entry.JID, "issued", entry.TokenTimestamp.Format(time.RFC3339))
}

// GetAllJIDs lists the contacts we hold a token from.
func ExamplePlugin_GetAllJIDs() {
	var plugin *tctoken.Plugin // from tctoken.Enable
	jids, _ := plugin.GetAllJIDs(context.Background())
	for _, jid := range jids {
		fmt.Println(jid)
	}
}

// SubscribePresence remembers the subscription, so that a new token from
// the contact re-sends it with the token attached.
func ExamplePlugin_SubscribePresence() {
	var plugin *tctoken.Plugin // from tctoken.Enable
	_ = plugin.SubscribePresence(context.Background(), types.NewJID("123456789012345", types.HiddenUserServer))
}

// A bridge that downloads history blobs itself (ManualHistorySyncDownload)
// hands each blob to the plugin, so that the NCT salt backfill and the
// conversation tokens are captured.
func ExamplePlugin_HandleHistorySync() {
	var client *whatsmeow.Client // with ManualHistorySyncDownload set
	var plugin *tctoken.Plugin   // from tctoken.Enable
	client.AddEventHandler(func(evt any) {
		msg, ok := evt.(*events.Message)
		if !ok {
			return
		}
		if notif := msg.Message.GetProtocolMessage().GetHistorySyncNotification(); notif != nil {
			ctx := context.Background()
			blob, err := client.DownloadHistorySync(ctx, notif, true)
			if err != nil {
				return
			}
			plugin.HandleHistorySync(ctx, blob)
			// ... the bridge's own backfill of blob goes here
		}
	})
}

// failingStore makes every token write fail, to test a bridge's behaviour
// when the plugin's database refuses writes.
type failingStore struct{ tctoken.AccountStore }

func (failingStore) PutTokens(context.Context, ...tcsqlstore.TokenWrite) ([]bool, error) {
	return nil, errors.New("injected fault")
}

// WithStoreWrapper puts a store of the test's own in front of the SQL one:
// here, one whose token writes fail.
func ExampleWithStoreWrapper() {
	var client *whatsmeow.Client // created as usual
	var db *dbutil.Database      // the bridge's database
	plugin, err := tctoken.Enable(context.Background(), client, db,
		tctoken.WithStoreWrapper(func(s tctoken.AccountStore) tctoken.AccountStore { return failingStore{s} }))
	if err != nil {
		panic(err)
	}
	defer plugin.Close()
}
