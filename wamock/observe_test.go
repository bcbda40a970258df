package wamock

import (
	"testing"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
)

// TestSentRecordedBeforeClientAnswers: the client may ack a stanza before
// the server's write returns. The hook plays that worst case by holding
// send until the ack has been read; the stanza must still count as sent and
// answered, or WaitIdle waits out its whole timeout for an ack that came.
func TestSentRecordedBeforeClientAnswers(t *testing.T) {
	srv := NewServer(t)
	const id = "wamock-ACK-BEFORE-RECORD"
	hookErr := make(chan string, 1)
	// Set before any client connects: send reads the hook unlocked.
	srv.afterWrite = func(node *waBinary.Node) {
		if node.Tag != "notification" || strAttr(node, "id") != id {
			return
		}
		_, acked := srv.TryWaitFor(0, func(n *waBinary.Node) bool {
			return n.Tag == "ack" && strAttr(n, "id") == id
		}, 5*time.Second)
		if !acked {
			hookErr <- "client did not ack the notification while send was held"
		}
	}
	cli := srv.QuickClient(t)
	device := cli.Store.ID.Device

	// whatsmeow acks every notification, even of a type it does not know.
	// Push writes from this goroutine; PushTo could queue the stanza (the
	// client reaches events.Connected just before the server marks it
	// active) and flush it from the read goroutine, where the hook would
	// block the very read that brings the ack.
	err := srv.Push(waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{
		"id":   id,
		"type": "wamock_test",
		"from": srv.OwnPN(),
	}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-hookErr:
		t.Fatal(msg)
	default:
	}
	found := false
	for _, n := range srv.Sent() {
		found = found || (n.Tag == "notification" && strAttr(n, "id") == id)
	}
	if !found {
		t.Fatal("Sent lacks a notification the client already acked")
	}
	start := time.Now()
	if !srv.WaitIdle(device, 2*time.Second) {
		t.Fatal("WaitIdle timed out although the client acked everything")
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("WaitIdle took %s", took)
	}
}
