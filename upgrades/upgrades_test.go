package upgrades_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"go.mau.fi/util/dbutil"
	wmsqlstore "go.mau.fi/whatsmeow/store/sqlstore"

	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/upgrades"
)

var tctokenTables = []string{"tctoken_tokens", "tctoken_nct_salt", "tctoken_ab_props", "tctoken_ab_props_meta"}

// latest is the version the embedded files upgrade to.
var latest = upgrades.Latest()

func TestUpgradeEmptyDatabase(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		if err := upgrades.Upgrade(ctx, db); err != nil {
			t.Fatal(err)
		}
		assertSchema(t, db)
	})
}

func TestUpgradeTwice(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		for i := 0; i < 2; i++ {
			if err := upgrades.Upgrade(ctx, db); err != nil {
				t.Fatalf("upgrade #%d: %v", i+1, err)
			}
		}
		assertSchema(t, db)
	})
}

// The tables share a database with whatsmeow's, in either order of upgrade,
// and neither touches the other's version table.
func TestUpgradeNextToWhatsmeow(t *testing.T) {
	for _, order := range []string{"whatsmeow first", "tctoken first"} {
		t.Run(order, func(t *testing.T) {
			dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
				ctx := context.Background()
				raw, dialect := dbtest.Raw(db)
				whatsmeow := wmsqlstore.NewWithDB(raw, dialect, nil)
				steps := []func() error{
					func() error { return whatsmeow.Upgrade(ctx) },
					func() error { return upgrades.Upgrade(ctx, db) },
				}
				if order == "tctoken first" {
					steps[0], steps[1] = steps[1], steps[0]
				}
				for _, step := range steps {
					if err := step(); err != nil {
						t.Fatal(err)
					}
				}
				assertSchema(t, db)
				var whatsmeowVersion int
				if err := db.QueryRow(ctx, "SELECT version FROM whatsmeow_version").Scan(&whatsmeowVersion); err != nil {
					t.Fatal(err)
				} else if whatsmeowVersion < 8 {
					t.Errorf("whatsmeow_version = %d, want whatsmeow's own latest", whatsmeowVersion)
				}
				// whatsmeow must still work on its side of the database.
				if _, err := whatsmeow.GetAllDevices(ctx); err != nil {
					t.Errorf("whatsmeow store broken after tctoken upgrade: %v", err)
				}
			})
		})
	}
}

// Several processes starting at once each open their own pool and upgrade;
// all must succeed and leave one consistent schema.
func TestUpgradeConcurrentProcesses(t *testing.T) {
	const processes = 4
	for _, dialect := range []struct {
		name, driver string
		uri          func(testing.TB) string
	}{
		{"sqlite", dbtest.DriverSQLite, dbtest.SQLiteURI},
		{"postgres", dbtest.DriverPostgres, dbtest.PostgresURI},
	} {
		t.Run(dialect.name, func(t *testing.T) {
			uri := dialect.uri(t)
			pools := make([]*dbutil.Database, processes)
			for i := range pools {
				pools[i] = dbtest.Open(t, dialect.driver, uri)
			}
			ctx := context.Background()
			start := make(chan struct{})
			errs := make([]error, processes)
			var wg sync.WaitGroup
			for i, pool := range pools {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errs[i] = upgrades.Upgrade(ctx, pool)
				}()
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("process %d: %v", i, err)
				}
			}
			assertSchema(t, pools[0])
		})
	}
}

func TestUpgradeNewerSchema(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		if err := upgrades.Upgrade(ctx, db); err != nil {
			t.Fatal(err)
		}

		// A newer version that declares itself compatible with ours is fine.
		setVersion(t, db, latest+1, latest)
		if err := upgrades.Upgrade(ctx, db); err != nil {
			t.Fatalf("compatible newer schema: %v", err)
		}

		setVersion(t, db, latest+5, latest+5)
		err := upgrades.Upgrade(ctx, db)
		if err == nil {
			t.Fatal("incompatible newer schema: no error")
		}
		if !errors.Is(err, dbutil.ErrUnsupportedDatabaseVersion) {
			t.Errorf("error does not wrap dbutil.ErrUnsupportedDatabaseVersion: %v", err)
		}
		if !strings.Contains(err.Error(), "tctoken") || !strings.Contains(err.Error(), upgrades.VersionTable) {
			t.Errorf("error does not say it is about tctoken's schema: %v", err)
		}
	})
}

func setVersion(t *testing.T, db *dbutil.Database, version, compat int) {
	t.Helper()
	if _, err := db.Exec(context.Background(), "UPDATE tctoken_version SET version=$1, compat=$2", version, compat); err != nil {
		t.Fatal(err)
	}
}

func assertSchema(t *testing.T, db *dbutil.Database) {
	t.Helper()
	ctx := context.Background()
	for _, table := range tctokenTables {
		// Select from the table rather than asking information_schema, which
		// on PostgreSQL would also see other schemas.
		if _, err := db.Exec(ctx, "SELECT 1 FROM "+table+" LIMIT 1"); err != nil {
			t.Errorf("table %s: %v", table, err)
		}
	}
	var rows, version int
	if err := db.QueryRow(ctx, "SELECT COUNT(*), MAX(version) FROM "+upgrades.VersionTable).Scan(&rows, &version); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || version != latest {
		t.Errorf("%s has %d row(s), version %d; want 1 row, version %d", upgrades.VersionTable, rows, version, latest)
	}
}
