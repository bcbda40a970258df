package tctoken_test

import (
	"context"
	"errors"
	"fmt"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/tctoken/tctoken"
)

// With GuardFirstContacts, a first contact (no valid tctoken from the
// contact) is refused before it goes on the wire while the server said
// that a reach-out timelock is in force (every first contact sent under a
// lock may lengthen it), or that the new-chat cap is CAPPED. Contacts with
// a valid tctoken still get through.
func ExampleWithRecovery_guardFirstContacts() {
	var client *whatsmeow.Client // logged in
	var db *dbutil.Database      // whatsmeow's database
	ctx := context.Background()
	policy := tctoken.DefaultRecovery()
	policy.GuardFirstContacts = true
	plugin, err := tctoken.Enable(ctx, client, db, tctoken.WithRecovery(policy))
	if err != nil {
		panic(err)
	}
	to := types.NewJID("15551234567", types.DefaultUserServer)
	_, err = plugin.SendMessage(ctx, to, &waE2E.Message{Conversation: proto.String("hello")})
	var refused *tctoken.SendError
	if errors.Is(err, tctoken.ErrFirstContactGuarded) && errors.As(err, &refused) {
		switch refused.Diagnosis {
		case tctoken.DiagnosisNewChatCap:
			fmt.Println("not sent: no new chats left until", refused.NewChatCap.CycleEnd)
		default:
			fmt.Println("not sent: restricted until", refused.Timelock.Ends, "as the", refused.Timelock.Source, "says")
		}
	}
}

// The source says how the plugin learned of the timelock: the server's
// answer to the query at connect, its notification, or the pattern of
// refused first contacts.
func ExampleTimelockState_source() {
	var plugin *tctoken.Plugin // from tctoken.Enable
	switch tl := plugin.Timelock(); tl.Source {
	case tctoken.TimelockFromQuery, tctoken.TimelockFromNotification:
		fmt.Println("the server says: active", tl.Active, "until", tl.Ends, "enforcement", tl.Enforcement)
	case tctoken.TimelockFromPattern:
		fmt.Println("inferred from refused first contacts: active", tl.Active)
	default:
		fmt.Println("nothing known yet")
	}
}

// RefreshTimelock asks the server again now, for instance after a first
// contact was refused with 463.
func ExamplePlugin_RefreshTimelock() {
	var plugin *tctoken.Plugin // from tctoken.Enable
	state, err := plugin.RefreshTimelock(context.Background())
	switch {
	case errors.Is(err, tctoken.ErrTimelockQuery):
		fmt.Println("keeping the last known state:", state.Active, err)
	case err != nil:
		fmt.Println("not connected or not logged in:", err)
	case state.Active:
		fmt.Println("restricted until", state.Ends)
	default:
		fmt.Println("no reach-out timelock")
	}
}
