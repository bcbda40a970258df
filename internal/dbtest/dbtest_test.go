package dbtest_test

import (
	"context"
	"testing"

	"go.mau.fi/util/dbutil"

	"github.com/tctoken/tctoken/internal/dbtest"
)

// Each database starts empty, and is not seen by another test's database,
// not even through information_schema (which dbutil uses).
func TestFreshAndIsolated(t *testing.T) {
	ctx := context.Background()
	dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
		if _, err := db.Exec(ctx, "CREATE TABLE dbtest_probe (x INTEGER)"); err != nil {
			t.Fatal(err)
		}
		var second *dbutil.Database
		switch db.Dialect {
		case dbutil.SQLite:
			// whatsmeow refuses to upgrade without foreign keys.
			var foreignKeys bool
			if err := db.QueryRow(ctx, "PRAGMA foreign_keys").Scan(&foreignKeys); err != nil || !foreignKeys {
				t.Errorf("foreign keys off (%v)", err)
			}
			second = dbtest.SQLite(t)
		case dbutil.Postgres:
			second = dbtest.Postgres(t)
		}
		if exists, err := second.TableExists(ctx, "dbtest_probe"); err != nil {
			t.Fatal(err)
		} else if exists {
			t.Error("a fresh database sees another test's table")
		}
	})
}

// Pools opened on one URI share the database, as two processes would.
func TestURIsShareTheDatabase(t *testing.T) {
	ctx := context.Background()
	for _, dialect := range []struct {
		name, driver string
		uri          func(testing.TB) string
	}{
		{"sqlite", dbtest.DriverSQLite, dbtest.SQLiteURI},
		{"postgres", dbtest.DriverPostgres, dbtest.PostgresURI},
	} {
		t.Run(dialect.name, func(t *testing.T) {
			uri := dialect.uri(t)
			a := dbtest.Open(t, dialect.driver, uri)
			b := dbtest.Open(t, dialect.driver, uri)
			if _, err := a.Exec(ctx, "CREATE TABLE dbtest_probe (x INTEGER)"); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Exec(ctx, "INSERT INTO dbtest_probe (x) VALUES (42)"); err != nil {
				t.Fatal(err)
			}
			var x int
			if err := b.QueryRow(ctx, "SELECT x FROM dbtest_probe").Scan(&x); err != nil || x != 42 {
				t.Errorf("second pool read %d, %v; want 42", x, err)
			}
			if raw, driver := dbtest.Raw(b); raw != b.RawDB || driver != dialect.driver {
				t.Errorf("Raw = %p, %q", raw, driver)
			}
		})
	}
}
