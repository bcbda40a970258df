package main

import (
	"context"
	"fmt"
	"io"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
)

// realSetup is real mode up to the network: the database, the device, the
// client with the plugin, the bridge. Nothing here connects anywhere, and
// nothing here touches the demo's fake server.
type realSetup struct {
	db   *dbutil.Database
	sess *session
}

func prepareReal(ctx context.Context, cfg *config, out io.Writer, log zerolog.Logger) (*realSetup, error) {
	chat, err := parseChat(cfg.Chat)
	if err != nil {
		return nil, err
	}
	// The name shown under Linked devices on the phone.
	store.SetOSInfo("tctoken bridge", [3]uint32{0, 1, 0})
	db, container, err := openStore(ctx, cfg.DB, log)
	if err != nil {
		return nil, err
	}
	// The first device in the store, or a new unpaired one.
	device, err := container.GetFirstDevice(ctx)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("load the device: %w", err)
	}
	client := whatsmeow.NewClient(device, whatsmeowLogger(log))
	sess, err := startSession(ctx, client, db, sessionParams{Chat: chat, Out: out, Log: log})
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return &realSetup{db: db, sess: sess}, nil
}

func (r *realSetup) close() {
	r.sess.close()
	_ = r.db.Close()
}

// runReal is the bridge against WhatsApp: pair if needed, connect, then
// relay lines until /quit, end of input or a signal.
func runReal(ctx context.Context, cfg *config, in io.Reader, out io.Writer, log zerolog.Logger) error {
	setup, err := prepareReal(ctx, cfg, out, log)
	if err != nil {
		return err
	}
	defer setup.close()
	cli, bridge := setup.sess.client, setup.sess.bridge

	if err = login(ctx, cli, terminalPairing(out, cfg.PairPhone), log); err != nil {
		return fmt.Errorf("log in: %w", err)
	}
	log.Info().Stringer("device", cli.Store.ID).Msg("Connected to WhatsApp")
	// Without the chat's LID a first message can carry no cstoken; asking
	// the server once is cheap. A failure only costs that fallback.
	if lid, err := learnLID(ctx, cli, bridge.Chat()); err != nil {
		log.Warn().Err(err).Stringer("chat", bridge.Chat()).Msg("Could not learn the chat's LID")
	} else if !lid.IsEmpty() {
		log.Debug().Stringer("chat", bridge.Chat()).Stringer("lid", lid).Msg("Chat's LID known")
	}
	fmt.Fprintf(out, "Bridging %s. Type a message and press Enter; /status, /help, /quit.\n", bridge.Chat())
	return bridge.Run(ctx, in)
}
