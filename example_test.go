package tctoken_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/store/sqlstore/upgrades"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/tctoken/tctoken"
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
	var refused *tctoken.IQError
	switch {
	case errors.Is(err, tctoken.ErrIneligible):
		fmt.Println("a group or our own account in the list:", err)
	case errors.Is(err, tctoken.ErrNotRecorded):
		fmt.Println("issued, but the database did not record it:", err)
	case errors.Is(err, tctoken.ErrDisconnected), errors.Is(err, whatsmeow.ErrIQTimedOut):
		fmt.Println("try again once connected:", err)
	case errors.As(err, &refused):
		fmt.Println("the server refused the IQ with", refused.Code)
	case err != nil:
		fmt.Println("not issued:", err)
	default:
		fmt.Println("issued; tokens in the reply:", len(received))
	}
}

// PruneExpired runs on every connect anyway; a bridge may also run it from
// an admin command.
func ExamplePlugin_PruneExpired() {
	var plugin *tctoken.Plugin // from tctoken.Enable
	removed, err := plugin.PruneExpired(context.Background())
	switch {
	case errors.Is(err, tctoken.ErrNotLoggedIn):
		fmt.Println("nothing to prune before pairing")
	case errors.Is(err, tctoken.ErrDatabase):
		fmt.Println("the database failed; the plugin tries again by itself:", err)
	case err == nil:
		fmt.Println("removed", removed, "expired tokens")
	}
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

// Enable fails with ErrAlreadyEnabled for a client the plugin is already
// enabled on, and with ErrInvalidArgument for a nil client or database.
func ExampleEnable_errors() {
	var client *whatsmeow.Client // created as usual
	var db *dbutil.Database      // the bridge's database
	plugin, err := tctoken.Enable(context.Background(), client, db)
	switch {
	case errors.Is(err, tctoken.ErrAlreadyEnabled):
		fmt.Println("enabled already; use the first Plugin")
	case errors.Is(err, tctoken.ErrInvalidArgument):
		fmt.Println("a programming error:", err)
	case errors.Is(err, tctoken.ErrDatabase), errors.Is(err, tctoken.ErrNotBound):
		fmt.Println("the database failed; the client works without the plugin:", err)
	case err == nil:
		defer plugin.Close()
	}
}

// The plugin logs through the bridge's zerolog logger; without this option
// it logs nothing.
func ExampleWithLogger() {
	var client *whatsmeow.Client
	var db *dbutil.Database
	log := zerolog.New(os.Stdout).With().Timestamp().Str("component", "tctoken").Logger()
	_, _ = tctoken.Enable(context.Background(), client, db, tctoken.WithLogger(log))
}

// A demo or a test moves time forward without waiting for it.
func ExampleWithClock() {
	var client *whatsmeow.Client
	var db *dbutil.Database
	var offset time.Duration // moved forward by the test
	_, _ = tctoken.Enable(context.Background(), client, db,
		tctoken.WithClock(func() time.Time { return time.Now().Add(offset) }))
}

// Defaults apply until the server's AB props arrive: here, no cstoken on
// first contact until the server says otherwise.
func ExampleWithDefaults() {
	var client *whatsmeow.Client
	var db *dbutil.Database
	defaults := tctoken.DefaultDefaults()
	defaults.AttachCSToken = false
	_, _ = tctoken.Enable(context.Background(), client, db, tctoken.WithDefaults(defaults))
}

// An override wins over the server's value, for debugging one gate.
func ExampleWithPropOverride() {
	var client *whatsmeow.Client
	var db *dbutil.Database
	_, _ = tctoken.Enable(context.Background(), client, db,
		tctoken.WithPropOverride(tctoken.PropTCTokenOn1to1, "0"))
}

// A bridge with many contacts keeps more of them in memory.
func ExampleWithCacheSize() {
	var client *whatsmeow.Client
	var db *dbutil.Database
	_, _ = tctoken.Enable(context.Background(), client, db, tctoken.WithCacheSize(50000))
}

// Close before Disconnect, so that an issuance in flight still has the
// connection.
func ExamplePlugin_Close() {
	var client *whatsmeow.Client // the client the plugin is enabled on
	var plugin *tctoken.Plugin   // from tctoken.Enable
	plugin.Close()
	client.Disconnect()
}

// Without the NCT salt no cstoken can be computed: first messages to
// contacts who never issued us a token may be refused.
func ExamplePlugin_HasSalt() {
	var plugin *tctoken.Plugin // from tctoken.Enable
	if !plugin.HasSalt() {
		fmt.Println("no NCT salt yet: first contacts get no cstoken")
	}
}

// The newer whatsmeow attaches tokens by itself; the plugin is then its
// store and policy.
func ExamplePlugin_NativeTokens() {
	var plugin *tctoken.Plugin // from tctoken.Enable
	if plugin.NativeTokens() {
		fmt.Println("whatsmeow attaches and issues; the plugin stores and decides")
	} else {
		fmt.Println("the plugin attaches and issues")
	}
}

// Policy is what is in force now: the defaults, the server's AB props and
// the overrides, merged.
func ExamplePlugin_Policy() {
	var plugin *tctoken.Plugin // from tctoken.Enable
	p := plugin.Policy()
	fmt.Println("tokens from contacts last", p.Timing.ReceiverBuckets, "buckets of", time.Duration(p.Timing.ReceiverDuration)*time.Second)
	fmt.Println("tctoken on 1:1:", p.AttachTCToken, "cstoken:", p.AttachCSToken)
}

// DefaultTiming is four buckets of seven days on both sides.
func ExampleDefaultTiming() {
	t := tctoken.DefaultTiming()
	fmt.Println(t.ReceiverBuckets, time.Duration(t.ReceiverDuration)*time.Second)
	// Output: 4 168h0m0s
}

// DefaultDefaults has every gate on.
func ExampleDefaultDefaults() {
	d := tctoken.DefaultDefaults()
	fmt.Println(d.AttachTCToken, d.AttachCSToken, d.IssueToLID)
	// Output: true true true
}

// ShortHash names a token in a log line without revealing it.
func ExampleShortHash() {
	fmt.Println(tctoken.ShortHash([]byte("token bytes")), tctoken.ShortHash(nil))
	// Output: 90fa0572 none
}
