package wamock

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
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

// ReachoutTimelockQueryID is the MEX query id of WhatsApp Web's
// WAWebMexFetchReachoutTimelockJobQuery: a client asks it for the account's
// reach-out timelock, and the server answers under
// "xwa2_fetch_account_reachout_timelock".
const ReachoutTimelockQueryID = "23983697327930364"

// reachoutState is the account's reach-out timelock as the server holds it:
// what the query answers, and what a push carries.
type reachoutState struct {
	mu sync.Mutex
	tl ReachoutTimelock
}

// SetReachoutTimelock sets the account's reach-out timelock, as the server
// holds it: the timelock query answers it from now on. It pushes nothing
// (PushReachoutTimelock does), and it changes no message rule: a test that
// wants first contacts refused sets RefuseFirstContacts as well.
func (s *Server) SetReachoutTimelock(tl ReachoutTimelock) {
	s.reachout.mu.Lock()
	defer s.reachout.mu.Unlock()
	s.reachout.tl = tl
}

// ReachoutTimelock returns the account's reach-out timelock as the server
// holds it; the zero value (no timelock) until one is set or pushed.
func (s *Server) ReachoutTimelock() ReachoutTimelock {
	s.reachout.mu.Lock()
	defer s.reachout.mu.Unlock()
	return s.reachout.tl
}

// reachoutBody is the JSON object both the query's answer and the push
// carry: is_active always, the end as a string of Unix seconds and the
// enforcement type only when there is one.
func reachoutBody(tl ReachoutTimelock) map[string]any {
	body := map[string]any{"is_active": tl.Active}
	if !tl.Ends.IsZero() {
		body["time_enforcement_ends"] = strconv.FormatInt(tl.Ends.Unix(), 10)
	}
	if tl.EnforcementType != "" {
		body["enforcement_type"] = tl.EnforcementType
	}
	return body
}

// answerReachoutTimelock is the default MEX handler of the timelock query:
//
//	{"data":{"xwa2_fetch_account_reachout_timelock":{"is_active":…,"time_enforcement_ends":"…","enforcement_type":"…"}}}
//
// The query takes no variables. A test replaces it with SetMexHandler (an
// error, a malformed answer) or removes it (an IQ error).
func (s *Server) answerReachoutTimelock(json.RawMessage) (any, error) {
	return map[string]any{"xwa2_fetch_account_reachout_timelock": reachoutBody(s.ReachoutTimelock())}, nil
}

// ReachoutTimelockNotification builds the mex notification that carries a
// timelock, as the newer whatsmeow parses it:
//
//	<notification type="mex" from="s.whatsapp.net" id=… t=…>
//	  <update op_name="NotificationUserReachoutTimelockUpdate">{"data":{"xwa2_notify_account_reachout_timelock":{…}}}</update>
//	</notification>
//
// The op name is the one the real server sends (whatsmeow logs it in the
// event's Mex.OpName); whatsmeow reads the payload key, not the op name.
// whatsmeow 2025-12 parses the same notification and dispatches nothing.
func ReachoutTimelockNotification(tl ReachoutTimelock) waBinary.Node {
	return MexNotification("NotificationUserReachoutTimelockUpdate", "xwa2_notify_account_reachout_timelock", reachoutBody(tl))
}

// PushReachoutTimelock sets the account's timelock (as SetReachoutTimelock:
// the query answers it from now on), sends the timelock notification to
// every device and waits until the clients handled it.
func (s *Server) PushReachoutTimelock(ctx context.Context, tl ReachoutTimelock) error {
	s.SetReachoutTimelock(tl)
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
