package wamock_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/tctoken/tctoken/wamock"
)

// The new-chat cap query from the real client is answered under both known
// ids in the live shape (numbers as strings), a query without WhatsApp
// Web's input is refused, and the push reaches the client, which acks it.
func TestNewChatCapQueryAndPush(t *testing.T) {
	srv := wamock.NewServer(t)
	cli := srv.QuickClient(t)
	end := time.Unix(1_772_592_000, 0)
	srv.SetNewChatCap(wamock.NewChatCap{Status: "FIRST_WARNING", Total: wamock.Quota(50), Used: wamock.Quota(27), CycleEnd: end, OTEStatus: "ELIGIBLE"})
	ctx := context.Background()
	input := map[string]any{"input": map[string]any{"type": "INDIVIDUAL_NEW_CHAT_THREAD"}}
	for _, id := range []string{wamock.NewChatCapQueryID, wamock.NewChatCapQueryIDLegacy} {
		//lint:ignore SA1019 the test speaks MEX the way whatsmeow's own queries do
		data, err := cli.DangerousInternals().SendMexIQ(ctx, id, input)
		if err != nil {
			t.Fatalf("query %s: %v", id, err)
		}
		var got struct {
			Info map[string]any `json:"xwa2_message_capping_info"`
		}
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"capping_status": "FIRST_WARNING", "total_quota": "50", "used_quota": "27",
			"cycle_end_timestamp": "1772592000", "ote_status": "ELIGIBLE"}
		if len(got.Info) != len(want) {
			t.Errorf("%s: %v, want %v", id, got.Info, want)
		}
		for k, v := range want {
			if got.Info[k] != v {
				t.Errorf("%s: %s = %v, want %v", id, k, got.Info[k], v)
			}
		}
	}
	//lint:ignore SA1019 as above
	if _, err := cli.DangerousInternals().SendMexIQ(ctx, wamock.NewChatCapQueryID, map[string]any{}); err == nil {
		t.Error("a query without the thread type was answered")
	}
	srv.SetNewChatCap(wamock.NewChatCap{Status: "NONE"}, "42")
	if len(srv.MexQueries("42")) != 0 {
		t.Fatal("no query yet")
	}
	//lint:ignore SA1019 as above
	if _, err := cli.DangerousInternals().SendMexIQ(ctx, "42", input); err != nil {
		t.Errorf("a test's own id: %v", err)
	}

	pushCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := srv.PushNewChatCap(pushCtx, wamock.NewChatCap{Status: "CAPPED", Total: wamock.Quota(50), Used: wamock.Quota(50), Numbers: true}); err != nil {
		t.Fatalf("push: %v", err)
	}
	//lint:ignore SA1019 as above
	data, err := cli.DangerousInternals().SendMexIQ(ctx, wamock.NewChatCapQueryID, input)
	if err != nil {
		t.Fatal(err)
	}
	var after struct {
		Info struct {
			Status string `json:"capping_status"`
			Used   int    `json:"used_quota"`
		} `json:"xwa2_message_capping_info"`
	}
	if err := json.Unmarshal(data, &after); err != nil || after.Info.Status != "CAPPED" || after.Info.Used != 50 {
		t.Errorf("after the push the query answers %s (%v)", data, err)
	}
	node := wamock.NewChatCapNotification(wamock.NewChatCap{Status: "NONE"})
	update := node.GetChildren()[0]
	if node.Attrs["type"] != "mex" || update.Attrs["op_name"] != "MessageCappingInfoNotification" {
		t.Errorf("notification %v %v", node.Attrs, update.Attrs)
	}
	var payload map[string]map[string]map[string]any
	if err := json.Unmarshal(update.Content.([]byte), &payload); err != nil || payload["data"]["xwa2_notify_new_chat_messages_capping_info_update"]["capping_status"] != "NONE" {
		t.Errorf("payload %s (%v)", update.Content, err)
	}
}
