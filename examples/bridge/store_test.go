package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/internal/dbtest"
)

// TestOpenStoreDialects opens the bridge's database on SQLite and
// PostgreSQL as real mode does, twice (a restart must find the schema up
// to date), and enables the plugin on a client over it.
func TestOpenStoreDialects(t *testing.T) {
	for dialect, uri := range map[string]func(testing.TB) string{
		"sqlite":   dbtest.SQLiteURI,
		"postgres": dbtest.PostgresURI,
	} {
		t.Run(dialect, func(t *testing.T) {
			addr := uri(t)
			ctx := context.Background()
			log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
			for run := 0; run < 2; run++ {
				db, container, err := openStore(ctx, addr, log)
				if err != nil {
					t.Fatalf("run %d: %v", run, err)
				}
				device, err := container.GetFirstDevice(ctx)
				if err != nil {
					t.Fatal(err)
				}
				client := whatsmeow.NewClient(device, whatsmeowLogger(log))
				var out bytes.Buffer
				sess, err := startSession(ctx, client, db, sessionParams{Chat: types.NewJID("15551234567", types.DefaultUserServer), Out: &out, Log: log})
				if err != nil {
					t.Fatalf("run %d: %v", run, err)
				}
				if st := sess.bridge.Status(ctx); st.Paired || st.ReadErr != nil {
					t.Errorf("run %d: status of an unpaired device: %+v", run, st)
				}
				sess.close()
				_ = db.Close()
			}
		})
	}
}
