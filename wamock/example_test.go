package wamock_test

import (
	"context"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"

	"github.com/tctoken/tctoken/wamock"
)

// sayHello is a test body: it starts a fake server, connects a real
// whatsmeow client to it and checks that a contact receives a message.
func sayHello(t *testing.T) {
	srv := wamock.NewServer(t) // stopped by t.Cleanup
	cli := srv.QuickClient(t)  // logged in, connected, disconnected by t.Cleanup

	alice := srv.AddContact(wamock.ContactOptions{})
	_, err := cli.SendMessage(context.Background(), alice.PN(), &waE2E.Message{Conversation: proto.String("hello")})
	if err != nil {
		t.Fatal(err)
	}
	msg := srv.WaitFor(t, "message to alice", wamock.IsMessageTo(alice.PN()), time.Second)
	got, err := alice.Decrypt(msg)
	if err != nil || got.GetConversation() != "hello" {
		t.Fatalf("alice got %v, %v", got, err)
	}
}

// A test starts the server and a connected client in two lines.
func Example() {
	// In a test: func TestHello(t *testing.T) { sayHello(t) }
	_ = sayHello
}
