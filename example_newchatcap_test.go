package tctoken_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow"

	"github.com/tctoken/tctoken"
)

// NewChatCap is the server's last word on how many new chats the account
// may start in this cycle.
func ExamplePlugin_NewChatCap() {
	var plugin *tctoken.Plugin // from tctoken.Enable
	nc := plugin.NewChatCap()
	switch {
	case !nc.Known():
		fmt.Println("the server never said (the AB props may not enable the cap)")
	case nc.InForce(time.Now()):
		fmt.Println("new chats are capped until", nc.CycleEnd)
	default:
		if left, ok := nc.Remaining(); ok {
			fmt.Println(nc.Status, left, "new chats left this cycle")
		}
	}
}

// RefreshNewChatCap asks again now, for instance after a first contact was
// refused with 463.
func ExamplePlugin_RefreshNewChatCap() {
	var plugin *tctoken.Plugin // from tctoken.Enable
	nc, err := plugin.RefreshNewChatCap(context.Background())
	switch {
	case errors.Is(err, tctoken.ErrNewChatCapDisabled):
		fmt.Println("the cap does not apply to this account")
	case err != nil:
		fmt.Println("keeping the last known state:", nc.Status, err)
	default:
		fmt.Println("new-chat cap:", nc.Status)
	}
}

// A change of the new-chat cap reaches the bridge's event handler.
func ExampleNewChatCapChanged() {
	var client *whatsmeow.Client // the client the plugin is enabled on
	client.AddEventHandler(func(evt any) {
		if evt, ok := evt.(*tctoken.NewChatCapChanged); ok {
			fmt.Println("new-chat cap:", evt.Previous.Status, "->", evt.State.Status)
		}
	})
}

// WithNewChatCapQueryID follows WhatsApp's next rotation of the query id
// before the plugin does.
func ExampleWithNewChatCapQueryID() {
	var client *whatsmeow.Client // from whatsmeow.NewClient
	var db *dbutil.Database      // the bridge's database
	plugin, err := tctoken.Enable(context.Background(), client, db, tctoken.WithNewChatCapQueryID("27910975521856601"))
	if err != nil {
		panic(err)
	}
	defer plugin.Close()
}
