package wamock_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tctoken/tctoken/wamock"
)

// An account under a reach-out timelock: the server announces it, and
// refuses messages to contacts that do not know us.
func ExampleServer_PushReachoutTimelock() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		srv.QuickClient(t)
		err := srv.PushReachoutTimelock(context.Background(), wamock.ReachoutTimelock{
			Active: true, Ends: time.Now().Add(24 * time.Hour), EnforcementType: "REACHOUT_TIMELOCK",
		})
		if err != nil {
			t.Fatal(err) // the client acked and handled the notification
		}
	})
}

// RefuseFirstContacts answers 463 to a message without a <tctoken>.
func ExampleRefuseFirstContacts() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		cli := srv.QuickClient(t)
		srv.SetMessageRule(wamock.RefuseFirstContacts())
		alice := srv.AddContact(wamock.ContactOptions{})
		resp, err := cli.SendMessage(context.Background(), alice.PN(), text("hello"))
		if ack, ok := srv.AckFor(resp.ID); err == nil || !ok || ack.Error != wamock.ErrorCodeNoToken {
			t.Fatalf("a first contact under a timelock is refused with 463: %v %+v", err, ack)
		}
	})
}

// ReachoutTimelockNotification builds the stanza, for a test that pushes
// it itself.
func ExampleReachoutTimelockNotification() {
	inATest(func(t *testing.T) {
		node := wamock.ReachoutTimelockNotification(wamock.ReachoutTimelock{Active: false})
		if node.Attrs["type"] != "mex" || len(node.GetChildren()) != 1 {
			t.Fatalf("not a mex notification: %v", node.Attrs)
		}
	})
}

func TestTimelockExamples(t *testing.T) {
	for name, example := range map[string]func(){
		"PushReachoutTimelock": ExampleServer_PushReachoutTimelock,
		"RefuseFirstContacts":  ExampleRefuseFirstContacts,
		"Notification":         ExampleReachoutTimelockNotification,
		"SetReachoutTimelock":  ExampleServer_SetReachoutTimelock,
	} {
		exampleBodies = nil
		example()
		if len(exampleBodies) != 1 {
			t.Fatalf("example %s has %d bodies", name, len(exampleBodies))
		}
		t.Run(name, exampleBodies[0])
	}
}

// SetReachoutTimelock sets what the server answers to the timelock MEX
// query (ReachoutTimelockQueryID), which clients send at connect.
func ExampleServer_SetReachoutTimelock() {
	inATest(func(t *testing.T) {
		srv := wamock.NewServer(t)
		srv.SetReachoutTimelock(wamock.ReachoutTimelock{Active: true, Ends: time.Now().Add(time.Hour), EnforcementType: "DEFAULT"})
		cli := srv.QuickClient(t)
		//lint:ignore SA1019 the timelock query has no public call in whatsmeow; this is how a client sends it.
		data, err := cli.DangerousInternals().SendMexIQ(context.Background(), wamock.ReachoutTimelockQueryID, map[string]any{})
		if err != nil || !strings.Contains(string(data), `"is_active":true`) {
			t.Fatalf("the query's answer: %s %v", data, err)
		}
		if n := len(srv.MexQueries(wamock.ReachoutTimelockQueryID)); n != 1 {
			t.Fatalf("%d queries seen", n)
		}
	})
}
