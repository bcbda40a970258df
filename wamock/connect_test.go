package wamock

import (
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types/events"
)

func TestConnectAndDisconnect(t *testing.T) {
	// Fresh devices exercise the client's initial prekey upload.
	srv := NewServer(t, WithFreshDevices())
	cli := srv.QuickClient(t)
	if !cli.IsLoggedIn() {
		t.Fatal("client is not logged in after events.Connected")
	}
	if cli.Store.LID.User != srv.OwnLID().User {
		t.Fatalf("store LID %s, want user %s", cli.Store.LID, srv.OwnLID().User)
	}
	// The client uploaded its prekeys and went active.
	srv.WaitFor(t, "prekey upload", IsIQ("encrypt", "set"), time.Second)
	srv.WaitFor(t, "passive IQ", IsIQ("passive", "set"), time.Second)
	if got := srv.OwnDeviceJIDs(); len(got) != 1 {
		t.Fatalf("devices with keys: %v", got)
	}

	cli.Disconnect()
	deadline := time.Now().Add(5 * time.Second)
	for len(srv.ConnectedDevices()) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("server still sees the client after Disconnect")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if errs := srv.Errors(); len(errs) > 0 {
		t.Fatalf("server errors: %v", errs)
	}
}

func TestReconnectAfterDrop(t *testing.T) {
	srv := NewServer(t)
	cli, _ := srv.QuickUnconnectedClient(t)
	connected := make(chan struct{}, 4)
	disconnected := make(chan struct{}, 4)
	cli.AddEventHandler(func(evt any) {
		switch evt.(type) {
		case *events.Connected:
			connected <- struct{}{}
		case *events.Disconnected:
			disconnected <- struct{}{}
		}
	})
	srv.ConnectAndWait(t, cli)
	<-connected

	srv.DropConnections()
	select {
	case <-disconnected:
	case <-time.After(5 * time.Second):
		t.Fatal("no events.Disconnected after DropConnections")
	}
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("client did not reconnect after DropConnections")
	}
	if !cli.IsLoggedIn() {
		t.Fatal("client not logged in after reconnect")
	}
}

// TestStartOutsideATest: Start serves programs (demos, tools) that have no
// testing.TB; the caller closes the server.
func TestStartOutsideATest(t *testing.T) {
	srv, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close) // after the client's own cleanup has disconnected it
	cli := srv.QuickClient(t)
	if !cli.IsLoggedIn() {
		t.Fatal("a client of a Start-ed server must log in")
	}
}
