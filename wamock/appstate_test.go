package wamock

import (
	"context"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waServerSync"
	"go.mau.fi/whatsmeow/types/events"
)

// appStateEvents collects the app state events of a client.
type appStateEvents struct {
	salts    chan []byte
	complete chan appstate.WAPatchName
}

func watchAppState(t *testing.T, cli *whatsmeow.Client) *appStateEvents {
	w := &appStateEvents{salts: make(chan []byte, 16), complete: make(chan appstate.WAPatchName, 16)}
	cli.AddEventHandler(func(evt any) {
		switch e := evt.(type) {
		case *events.AppState:
			if len(e.Index) == 1 && e.Index[0] == NctSaltIndex {
				salt, ok := NctSaltFromValue(e.SyncActionValue)
				if !ok {
					t.Errorf("nct_salt_sync event without field 80.1: %v", e.SyncActionValue)
				}
				w.salts <- salt
			}
		case *events.AppStateSyncComplete:
			w.complete <- e.Name
		}
	})
	return w
}

func (w *appStateEvents) waitComplete(t *testing.T, name appstate.WAPatchName) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case got := <-w.complete:
			if got == name {
				return
			}
		case <-timeout:
			t.Fatalf("no AppStateSyncComplete for %s", name)
		}
	}
}

func (w *appStateEvents) waitSalt(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-w.salts:
		if string(got) != want {
			t.Fatalf("salt %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no events.AppState for nct_salt_sync %q", want)
	}
}

func TestNCTSaltIncremental(t *testing.T) {
	srv := NewServer(t)
	cli, _ := srv.QuickUnconnectedClient(t)
	watch := watchAppState(t, cli)
	srv.ConnectAndWait(t, cli)
	ctx := context.Background()
	phone := srv.Phone()

	// regular_high starts with the server's seed (version 1), so the client's
	// first sync stores a version and later syncs are incremental.
	must(t, phone.ShareAppStateKeys(ctx))
	watch.waitComplete(t, appstate.WAPatchRegularHigh)

	must(t, phone.SetNCTSalt(ctx, []byte("salt-one")))
	watch.waitSalt(t, "salt-one")

	mark := srv.Mark()
	must(t, phone.RemoveNCTSalt(ctx))
	srv.WaitForSince(t, mark, "incremental fetch after REMOVE", func(n *waBinary.Node) bool {
		coll := n.GetChildByTag("sync", "collection")
		return IsIQ("w:sync:app:state", "set")(n) && strAttr(&coll, "version") == "2"
	}, 5*time.Second)
	waitUntil(t, "client stores version 3", func() bool {
		version, _, err := cli.Store.AppState.GetAppStateVersion(ctx, string(appstate.WAPatchRegularHigh))
		return err == nil && version == 3
	})
	if srv.AppStateVersion(appstate.WAPatchRegularHigh) != 3 {
		t.Fatalf("server version %d", srv.AppStateVersion(appstate.WAPatchRegularHigh))
	}

	// A full resync downloads the snapshot (the seed mute and a second
	// salt) and verifies its MAC.
	must(t, phone.AppendAppStatePatch(appstate.WAPatchRegularHigh, AppStateMutation{
		Operation: waServerSync.SyncdMutation_SET,
		Index:     []string{NctSaltIndex},
		Value:     NctSaltValue([]byte("salt-two")),
		Version:   1,
	}))
	srv.WaitIdle(cli.Store.ID.Device, 2*time.Second)
	must(t, cli.FetchAppState(ctx, appstate.WAPatchRegularHigh, true, false))
	version, _, err := cli.Store.AppState.GetAppStateVersion(ctx, string(appstate.WAPatchRegularHigh))
	if err != nil || version != 4 {
		t.Fatalf("version after full sync = %d, %v", version, err)
	}
	if len(srv.MediaRequests()) == 0 {
		t.Fatal("the snapshot was not downloaded from the media host")
	}
	if errs := srv.Errors(); len(errs) > 0 {
		t.Fatalf("server errors: %v", errs)
	}
}

func TestNCTSaltFullSyncFreshClient(t *testing.T) {
	srv := NewServer(t)
	ctx := context.Background()
	// The salt exists before the client is paired; the client gets it from
	// the snapshot of its first (full) sync after the phone shares the keys.
	must(t, srv.Phone().SetNCTSalt(ctx, []byte("early-salt")))
	cli, _ := srv.QuickUnconnectedClient(t)
	cli.EmitAppStateEventsOnFullSync = true
	watch := watchAppState(t, cli)
	srv.ConnectAndWait(t, cli)
	must(t, srv.Phone().ShareAppStateKeys(ctx))
	watch.waitSalt(t, "early-salt")
}

func TestAppStateKeyRequest(t *testing.T) {
	srv := NewServer(t)
	ctx := context.Background()
	cli, _ := srv.QuickUnconnectedClient(t)
	cli.EmitAppStateEventsOnFullSync = true
	watch := watchAppState(t, cli)
	srv.ConnectAndWait(t, cli)
	// No keys shared yet: the client cannot decode the patch, asks the phone
	// for the key (a peer message), and the phone answers with it.
	must(t, srv.Phone().SetNCTSalt(ctx, []byte("requested-salt")))
	srv.WaitFor(t, "app state key request to the phone", func(n *waBinary.Node) bool {
		return n.Tag == "message" && strAttr(n, "category") == "peer"
	}, 5*time.Second)
	watch.waitSalt(t, "requested-salt")
}
