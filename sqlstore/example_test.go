package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	_ "github.com/mattn/go-sqlite3"
	"go.mau.fi/util/dbutil"
	wsqlstore "go.mau.fi/whatsmeow/store/sqlstore"
	wupgrades "go.mau.fi/whatsmeow/store/sqlstore/upgrades"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/sqlstore"
)

// exampleDatabase opens a fresh SQLite database with whatsmeow's tables and
// the plugin's, as a bridge's database holds them: whatsmeow's container on
// a child of the bridge's database.
func exampleDatabase() (plugin *sqlstore.Container, whatsmeow *wsqlstore.Container, cleanup func()) {
	dir, err := os.MkdirTemp("", "tctoken-example")
	if err != nil {
		panic(err)
	}
	raw, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "bridge.db")+"?_foreign_keys=on&_journal_mode=WAL")
	if err != nil {
		panic(err)
	}
	db, err := dbutil.NewWithDB(raw, "sqlite3")
	if err != nil {
		panic(err)
	}
	whatsmeow = wsqlstore.NewWithWrappedDB(db.Child("whatsmeow_version", wupgrades.Table, nil), nil)
	if err = whatsmeow.Upgrade(context.Background()); err != nil {
		panic(err)
	}
	plugin = sqlstore.New(db)
	if err = plugin.Upgrade(context.Background()); err != nil {
		panic(err)
	}
	return plugin, whatsmeow, func() { _ = raw.Close(); _ = os.RemoveAll(dir) }
}

// SharesTransactions tells whether whatsmeow's token store runs in the
// plugin's transactions: the plugin then commits its writes together with
// whatsmeow's. Nothing of the probe stays behind.
func ExampleStore_SharesTransactions() {
	ctx := context.Background()
	plugin, whatsmeow, cleanup := exampleDatabase()
	defer cleanup()
	account := types.NewADJID("15550000001", 0, 1)
	store := plugin.ForAccount(account)
	theirs := wsqlstore.NewSQLStore(whatsmeow, account)

	shared, err := store.SharesTransactions(ctx, func(ctx context.Context, contact types.JID) ([]byte, error) {
		token, err := theirs.GetPrivacyToken(ctx, contact)
		if token == nil {
			return nil, err
		}
		return token.Token, err
	})
	fmt.Println("shared:", shared, err)
	// Output: shared: true <nil>
}

// GetByLID reads a contact's rows under its LID and under the phone number
// whatsmeow's LID map pairs with it, in one statement.
func ExampleStore_GetByLID() {
	ctx := context.Background()
	plugin, whatsmeow, cleanup := exampleDatabase()
	defer cleanup()
	store := plugin.ForAccount(types.NewADJID("15550000001", 0, 1))
	lid := types.NewJID("200000000000001", types.HiddenUserServer)
	pn := types.NewJID("15551230001", types.DefaultUserServer)
	if err := whatsmeow.LIDMap.PutLIDMapping(ctx, lid, pn); err != nil {
		panic(err)
	}
	// A token filed under the phone number before the LID was known.
	if _, err := store.PutTokens(ctx, sqlstore.TokenWrite{Contact: pn, Token: []byte("token"), TokenTS: 1_700_000_000}); err != nil {
		panic(err)
	}

	mapped, rows, err := store.GetByLID(ctx, lid)
	fmt.Println("phone number:", mapped, "rows:", len(rows), "under:", rows[0].Contact, err)
	// Output: phone number: 15551230001@s.whatsapp.net rows: 1 under: 15551230001@s.whatsapp.net <nil>
}
