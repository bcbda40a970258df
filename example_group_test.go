package tctoken_test

import (
	"context"
	"errors"
	"fmt"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken"
)

// UpdateGroupParticipants is a drop-in for Client.UpdateGroupParticipants:
// an add carries each contact's valid tctoken once AB prop 11262 allows it
// (here forced on locally), and each participant's outcome is in its Error.
func ExamplePlugin_UpdateGroupParticipants() {
	// from tctoken.Enable(ctx, client, db, tctoken.WithPropOverride(tctoken.PropGroupAddToken, "1"))
	var plugin *tctoken.Plugin
	ctx := context.Background()
	group := types.NewJID("120363000000000001", types.GroupServer)
	contact := types.NewJID("15551234567", types.DefaultUserServer)
	added, err := plugin.UpdateGroupParticipants(ctx, group, []types.JID{contact}, whatsmeow.ParticipantChangeAdd)
	switch {
	case errors.Is(err, whatsmeow.ErrIQForbidden):
		fmt.Println("not an admin of", group)
	case err != nil:
		fmt.Println("add failed:", err)
	default:
		for _, p := range added {
			if p.Error != 0 {
				fmt.Println(p.JID, "was not added:", p.Error)
			}
		}
	}
}

// CreateGroup is a drop-in for Client.CreateGroup whose <privacy> tokens
// follow AB prop 11261.
func ExamplePlugin_CreateGroup() {
	var plugin *tctoken.Plugin // from tctoken.Enable
	ctx := context.Background()
	info, err := plugin.CreateGroup(ctx, whatsmeow.ReqCreateGroup{
		Name:         "Team",
		Participants: []types.JID{types.NewJID("15551234567", types.DefaultUserServer)},
	})
	if err != nil {
		fmt.Println("create failed:", err)
		return
	}
	fmt.Println("created", info.JID)
}
