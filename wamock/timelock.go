package wamock

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// ReachoutTimelock is the server's word on an account restricted from
// messaging new contacts (a "reach-out timelock").
type ReachoutTimelock struct {
	Active bool
	// Ends is when the enforcement ends; zero leaves it out.
	Ends time.Time
	// EnforcementType is the server's name for the restriction, if any.
	EnforcementType string
}

// ReachoutTimelockNotification builds the mex notification that carries a
// timelock, as the newer whatsmeow parses it:
//
//	<notification type="mex" from="s.whatsapp.net" id=… t=…>
//	  <update op_name="NotifyAccountReachoutTimelock">{"data":{"xwa2_notify_account_reachout_timelock":{…}}}</update>
//	</notification>
//
// whatsmeow 2025-12 parses the same notification and dispatches nothing.
func ReachoutTimelockNotification(tl ReachoutTimelock) waBinary.Node {
	body := map[string]any{"is_active": tl.Active}
	if !tl.Ends.IsZero() {
		body["time_enforcement_ends"] = strconv.FormatInt(tl.Ends.Unix(), 10)
	}
	if tl.EnforcementType != "" {
		body["enforcement_type"] = tl.EnforcementType
	}
	payload, _ := json.Marshal(map[string]any{"data": map[string]any{"xwa2_notify_account_reachout_timelock": body}})
	return waBinary.Node{
		Tag: "notification",
		Attrs: waBinary.Attrs{
			"from": types.ServerJID,
			"type": "mex",
			"id":   newStanzaID(),
			"t":    time.Now().Unix(),
		},
		Content: []waBinary.Node{{
			Tag:     "update",
			Attrs:   waBinary.Attrs{"op_name": "NotifyAccountReachoutTimelock"},
			Content: payload,
		}},
	}
}

// PushReachoutTimelock sends the timelock notification to every device and
// waits until the clients handled it.
func (s *Server) PushReachoutTimelock(ctx context.Context, tl ReachoutTimelock) error {
	if err := s.PushAndWait(ctx, ReachoutTimelockNotification(tl)); err != nil {
		return fmt.Errorf("wamock: push reach-out timelock: %w", err)
	}
	return nil
}

// RefuseFirstContacts is the ack rule of an account under a reach-out
// timelock: messages to contacts that carry a <tctoken> (contacts who
// know us) go through, every other message to a contact is refused with
// 463, a <cstoken> included.
func RefuseFirstContacts() MessageRule {
	return func(msg *waBinary.Node, to *Contact) int {
		if to == nil || hasChild(msg, "tctoken") {
			return 0
		}
		return ErrorCodeNoToken
	}
}
