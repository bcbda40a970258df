package wamock

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
)

// The query ids of WhatsApp Web's new-chat cap query: the current one and
// the one before it. The server answers both unless a test says otherwise.
const (
	NewChatCapQueryID       = "27910975521856601"
	NewChatCapQueryIDLegacy = "24503548349331633"
)

// NewChatCap is the server's word on the account's new-chat cap ("message
// capping"): how many new one-on-one chats it may start in the cycle.
type NewChatCap struct {
	// Status is the capping_status: NONE, FIRST_WARNING, SECOND_WARNING,
	// CAPPED, or anything else a test wants the client to survive.
	Status string
	// Total and Used are total_quota and used_quota; nil leaves them out.
	Total, Used *int64
	// CycleStart, CycleEnd and ServerSent are left out when zero.
	CycleStart, CycleEnd, ServerSent time.Time
	OTEStatus, MVStatus              string
	// Numbers sends the quotas and timestamps as JSON numbers; the live
	// server sends strings, and clients must read both.
	Numbers bool
}

// Quota is a helper for NewChatCap's optional counts.
func Quota(n int64) *int64 { return &n }

// body is the capping info object the query and the push share.
func (nc NewChatCap) body() map[string]any {
	scalar := func(n int64) any {
		if nc.Numbers {
			return n
		}
		return strconv.FormatInt(n, 10)
	}
	out := map[string]any{"capping_status": nc.Status}
	if nc.Total != nil {
		out["total_quota"] = scalar(*nc.Total)
	}
	if nc.Used != nil {
		out["used_quota"] = scalar(*nc.Used)
	}
	for key, t := range map[string]time.Time{
		"cycle_start_timestamp": nc.CycleStart, "cycle_end_timestamp": nc.CycleEnd, "server_sent_timestamp": nc.ServerSent,
	} {
		if !t.IsZero() {
			out[key] = scalar(t.Unix())
		}
	}
	if nc.OTEStatus != "" {
		out["ote_status"] = nc.OTEStatus
	}
	if nc.MVStatus != "" {
		out["mv_status"] = nc.MVStatus
	}
	return out
}

// SetNewChatCap makes the server answer the new-chat cap query with nc,
// under the given query ids, or under both known ids when none is given.
// The query's variables must ask for the INDIVIDUAL_NEW_CHAT_THREAD cap,
// as WhatsApp Web does; anything else gets a GraphQL error 400.
func (s *Server) SetNewChatCap(nc NewChatCap, queryIDs ...string) {
	if len(queryIDs) == 0 {
		queryIDs = []string{NewChatCapQueryID, NewChatCapQueryIDLegacy}
	}
	handler := func(variables json.RawMessage) (any, error) {
		var v struct {
			Input struct {
				Type string `json:"type"`
			} `json:"input"`
		}
		if err := json.Unmarshal(variables, &v); err != nil || v.Input.Type != "INDIVIDUAL_NEW_CHAT_THREAD" {
			return nil, &MexError{Code: 400, Message: fmt.Sprintf("bad capping input %s", variables)}
		}
		return map[string]any{"xwa2_message_capping_info": nc.body()}, nil
	}
	for _, id := range queryIDs {
		s.SetMexHandler(id, handler)
	}
}

// NewChatCapNotification builds the mex notification WhatsApp pushes when
// the cap changes, as WhatsApp Web's WAWebNewChatMessageCappingNotificationHandler
// reads it:
//
//	<notification type="mex" from="s.whatsapp.net" id=… t=…>
//	  <update op_name="MessageCappingInfoNotification">{"data":{"xwa2_notify_new_chat_messages_capping_info_update":{…}}}</update>
//	</notification>
//
// Neither whatsmeow 2025-12 nor the newer one dispatches anything for it.
func NewChatCapNotification(nc NewChatCap) waBinary.Node {
	return MexNotification("MessageCappingInfoNotification", "xwa2_notify_new_chat_messages_capping_info_update", nc.body())
}

// PushNewChatCap makes nc the server's state (both query ids answer it
// from now on, as after SetNewChatCap), sends the push to every device and
// waits until the clients handled it.
func (s *Server) PushNewChatCap(ctx context.Context, nc NewChatCap) error {
	s.SetNewChatCap(nc)
	if err := s.PushAndWait(ctx, NewChatCapNotification(nc)); err != nil {
		return fmt.Errorf("wamock: push new-chat cap: %w", err)
	}
	return nil
}
