package dbtest

import (
	"context"
	"testing"

	"go.mau.fi/util/dbutil"
	wsqlstore "go.mau.fi/whatsmeow/store/sqlstore"
	wupgrades "go.mau.fi/whatsmeow/store/sqlstore/upgrades"
)

// WhatsmeowContainer creates whatsmeow's own tables in db and returns its
// container, built the way mautrix bridges build it: whatsmeow's upgrades on
// a child of the database the bridge (and the plugin) hold.
func WhatsmeowContainer(t testing.TB, db *dbutil.Database) *wsqlstore.Container {
	t.Helper()
	container := wsqlstore.NewWithWrappedDB(db.Child("whatsmeow_version", wupgrades.Table, nil), nil)
	if err := container.Upgrade(context.Background()); err != nil {
		t.Fatalf("dbtest: upgrade whatsmeow's tables: %v", err)
	}
	return container
}
