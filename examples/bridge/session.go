package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken"
)

// session is a whatsmeow client with the plugin enabled and the bridge
// listening to its events.
type session struct {
	client *whatsmeow.Client
	plugin *tctoken.Plugin
	bridge *Bridge
}

// sessionParams is what startSession needs besides the client and db.
type sessionParams struct {
	Chat types.JID
	Out  io.Writer
	Log  zerolog.Logger
	// Clock replaces time.Now in the plugin and in /status. Only the demo
	// sets it, to make weeks pass in a second.
	Clock func() time.Time
}

// startSession enables the plugin on a client that is not connected yet,
// so that no event (a token notification right after login) is missed,
// and hooks the bridge up. db is the database that also backs whatsmeow's
// store.
func startSession(ctx context.Context, client *whatsmeow.Client, db *dbutil.Database, p sessionParams) (*session, error) {
	opts := []tctoken.Option{tctoken.WithLogger(p.Log.With().Str("component", "tctoken").Logger())}
	if p.Clock != nil {
		opts = append(opts, tctoken.WithClock(p.Clock))
	}

	// The one line that makes this client handle privacy tokens.
	plugin, err := tctoken.Enable(ctx, client, db, opts...)
	if err != nil {
		return nil, fmt.Errorf("enable the tctoken plugin: %w", err)
	}

	bridge := newBridge(client, plugin, p.Chat, p.Out, p.Log.With().Str("component", "bridge").Logger(), p.Clock)
	client.AddEventHandler(bridge.handleEvent)
	return &session{client: client, plugin: plugin, bridge: bridge}, nil
}

// close stops the plugin first, which lets its background work (an
// issuance in flight) finish while still connected, then disconnects.
func (s *session) close() {
	s.plugin.Close()
	s.client.Disconnect()
}
