// Package dbtest gives tests a fresh, isolated database on each dialect that
// tctoken supports: a new SQLite file, and a new schema on a PostgreSQL server.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/lib/pq"
	_ "github.com/mattn/go-sqlite3"
	"go.mau.fi/util/dbutil"
)

const (
	// EnvPostgres names the variable holding the PostgreSQL server to test
	// against, as a postgres:// URL.
	EnvPostgres = "TCTOKEN_TEST_POSTGRES"
	// EnvRequirePostgres, set to 1, turns a missing PostgreSQL server from a
	// skip into a failure (for CI, where a skip would go unnoticed).
	EnvRequirePostgres = "TCTOKEN_REQUIRE_POSTGRES"
	// DefaultPostgres is the server tried when EnvPostgres is unset.
	DefaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

	// Driver names, as database/sql and whatsmeow's sqlstore.NewWithDB take them.
	DriverSQLite   = "sqlite3"
	DriverPostgres = "postgres"
)

// ForEachDialect runs fn as the subtests "sqlite" and "postgres", each with a
// fresh, empty database. The postgres subtest is skipped when no server
// answers (see [Postgres]).
func ForEachDialect(t *testing.T, fn func(t *testing.T, db *dbutil.Database)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		fn(t, SQLite(t))
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, Postgres(t))
	})
}

// SQLite opens a new SQLite database file in t.TempDir().
func SQLite(t testing.TB) *dbutil.Database {
	t.Helper()
	return Open(t, DriverSQLite, SQLiteURI(t))
}

// SQLiteURI returns the address of a new SQLite database file in t.TempDir(),
// for tests that open several pools on one file (as separate processes would).
// The file is created by the first pool that opens it.
func SQLiteURI(t testing.TB) string {
	t.Helper()
	// A second subtest of the same name gets a "#01" suffix, and '#' would
	// end the path of a file: URI, opening a file outside the temp dir that
	// outlives the test: escape it (and '?', which would start the options).
	path := strings.NewReplacer("%", "%25", "#", "%23", "?", "%3f").Replace(filepath.Join(t.TempDir(), "tctoken.db"))
	// The options mirror a real deployment: whatsmeow requires foreign keys,
	// bridges run SQLite in WAL mode with synchronous=NORMAL (the pragmas of
	// the sqlite3-fk-wal driver mautrix bridges open it with; go-sqlite3's
	// build defaults WAL databases to NORMAL too, but the figures should not
	// rest on a build flag), and the busy timeout lets concurrent writers
	// wait for each other instead of failing at once.
	return "file:" + path + "?_foreign_keys=on&_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=10000"
}

// Postgres opens a pool on a new, empty PostgreSQL schema that is dropped when
// the test ends.
//
// Without a server it skips the test, saying which address it tried and how
// to set another, unless TCTOKEN_REQUIRE_POSTGRES=1, which makes it fail.
func Postgres(t testing.TB) *dbutil.Database {
	t.Helper()
	return Open(t, DriverPostgres, PostgresURI(t))
}

// PostgresURI creates a new PostgreSQL schema, dropped when the test ends, and
// returns an address whose connections use it, for tests that open several
// pools on it (as separate processes would). Skips like [Postgres].
//
// Each schema gets a role of its own that owns it and can see nothing else.
// That matters because dbutil looks tables up in information_schema, which
// lists every schema the role may read: with one shared role, a test's
// upgrade would find another test's whatsmeow_version and break.
func PostgresURI(t testing.TB) string {
	t.Helper()
	admin, base := postgresAdmin(t)

	name := "tctoken_test_" + randomHex(t, 8)
	password := randomHex(t, 16)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Role and schema names cannot be query parameters. Both are generated
	// above from hex digits, so quoting them is enough.
	uri := *base
	_, err := admin.ExecContext(ctx, fmt.Sprintf(`CREATE ROLE "%s" LOGIN PASSWORD '%s'`, name, password))
	ownRole := err == nil
	if ownRole {
		_, err = admin.ExecContext(ctx, fmt.Sprintf(`CREATE SCHEMA "%s" AUTHORIZATION "%s"`, name, name))
		uri.User = url.UserPassword(name, password)
	} else {
		// Without the right to create roles, fall back to a schema owned by
		// the configured user: isolated enough for tests that do not run in
		// parallel with others on the same server.
		t.Logf("dbtest: cannot create a PostgreSQL role (%v); test schema %s will share the configured user", err, name)
		_, err = admin.ExecContext(ctx, fmt.Sprintf(`CREATE SCHEMA "%s"`, name))
	}
	if err != nil {
		t.Fatalf("dbtest: failed to create PostgreSQL test schema %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := dropSchema(ctx, admin, name); err != nil {
			t.Errorf("dbtest: failed to drop PostgreSQL test schema %s: %v", name, err)
		}
		if ownRole {
			if _, err := admin.ExecContext(ctx, fmt.Sprintf(`DROP ROLE "%s"`, name)); err != nil {
				t.Errorf("dbtest: failed to drop PostgreSQL test role %s: %v", name, err)
			}
		}
	})

	// lib/pq sends parameters it does not know itself to the server as
	// session settings, so every connection of the pool starts in the schema.
	query := uri.Query()
	query.Set("search_path", name)
	uri.RawQuery = query.Encode()
	return uri.String()
}

// dropSchema drops a schema and everything in it. The drop locks every
// table of the schema, and can meet an autovacuum worker or a closing
// connection of the test's pool taking them in another order: PostgreSQL
// then cancels one side as a deadlock, and a second try finds the way
// clear.
func dropSchema(ctx context.Context, admin *sql.DB, name string) error {
	var err error
	for try := 0; try < 5; try++ {
		if _, err = admin.ExecContext(ctx, fmt.Sprintf(`DROP SCHEMA "%s" CASCADE`, name)); err == nil || !strings.Contains(err.Error(), "deadlock detected") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// ReadableSchema creates a PostgreSQL schema that db's role may read but
// that is not on the search_path of db's connections, runs ddl in it (as the
// admin, its statements unqualified), grants db's role USAGE on it and
// SELECT on the tables ddl made, and drops it when the test ends. It returns
// the schema's name. Skips like [Postgres].
//
// It sets up what the roles of [PostgresURI] otherwise rule out: a server
// where the bridge's role can read a schema other than its own (another
// bridge's, or an old copy), for tests of what the plugin sees there.
func ReadableSchema(t testing.TB, db *dbutil.Database, ddl ...string) string {
	t.Helper()
	admin, _ := postgresAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var role string
	if err := db.QueryRow(ctx, "SELECT current_user").Scan(&role); err != nil {
		t.Fatalf("dbtest: failed to read the test's PostgreSQL role: %v", err)
	}

	// Names cannot be query parameters: the schema's is made of hex digits
	// and the role's is quoted as PostgreSQL quotes identifiers.
	name := "tctoken_other_" + randomHex(t, 8)
	quotedRole := `"` + strings.ReplaceAll(role, `"`, `""`) + `"`
	if _, err := admin.ExecContext(ctx, fmt.Sprintf(`CREATE SCHEMA "%s"`, name)); err != nil {
		t.Fatalf("dbtest: failed to create PostgreSQL schema %s: %v", name, err)
	}
	// Registered after the test's own schema and role, so it runs before
	// them: the role cannot be dropped while it holds grants here.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := dropSchema(ctx, admin, name); err != nil {
			t.Errorf("dbtest: failed to drop PostgreSQL schema %s: %v", name, err)
		}
	})
	statements := []string{fmt.Sprintf(`SET LOCAL search_path TO "%s"`, name)}
	statements = append(statements, ddl...)
	statements = append(statements,
		fmt.Sprintf(`GRANT USAGE ON SCHEMA "%s" TO %s`, name, quotedRole),
		fmt.Sprintf(`GRANT SELECT ON ALL TABLES IN SCHEMA "%s" TO %s`, name, quotedRole))
	tx, err := admin.BeginTx(ctx, nil)
	if err != nil {
		t.Fatalf("dbtest: failed to fill PostgreSQL schema %s: %v", name, err)
	}
	for _, statement := range statements {
		if _, err = tx.ExecContext(ctx, statement); err != nil {
			_ = tx.Rollback()
			t.Fatalf("dbtest: failed to fill PostgreSQL schema %s (%s): %v", name, statement, err)
		}
	}
	if err = tx.Commit(); err != nil {
		t.Fatalf("dbtest: failed to fill PostgreSQL schema %s: %v", name, err)
	}
	return name
}

// Open opens a pool on uri with the given driver ([DriverSQLite] or
// [DriverPostgres]) and closes it when the test ends. Cleanups run in reverse
// order, so a pool opened on a [PostgresURI] closes before the schema drops.
func Open(t testing.TB, driver, uri string) *dbutil.Database {
	t.Helper()
	raw, err := sql.Open(driver, uri)
	if err != nil {
		t.Fatalf("dbtest: failed to open %s database: %v", driver, err)
	}
	t.Cleanup(func() {
		_ = raw.Close()
	})
	db, err := dbutil.NewWithDB(raw, driver)
	if err != nil {
		t.Fatalf("dbtest: failed to wrap %s database: %v", driver, err)
	}
	return db
}

// Raw returns the pool and driver name under db, as whatsmeow's
// sqlstore.NewWithDB takes them.
func Raw(db *dbutil.Database) (*sql.DB, string) {
	return db.RawDB, db.Dialect.String()
}

var admin struct {
	sync.Mutex
	db   *sql.DB
	base *url.URL
	// err remembers a failed connection, so that a missing server costs one
	// timeout per test binary rather than one per test.
	err error
}

// postgresAdmin returns a pool on the configured server, shared by all tests
// of the binary, for creating and dropping test schemas.
func postgresAdmin(t testing.TB) (*sql.DB, *url.URL) {
	t.Helper()
	address := os.Getenv(EnvPostgres)
	if address == "" {
		address = DefaultPostgres
	}

	admin.Lock()
	defer admin.Unlock()
	if admin.db == nil && admin.err == nil {
		admin.db, admin.base, admin.err = connectAdmin(address)
	}
	if admin.err != nil {
		msg := fmt.Sprintf("dbtest: PostgreSQL TESTS SKIPPED: no server at %s (%v). "+
			"Set %s to a postgres:// URL of a server where tests may create roles and schemas, "+
			"or %s=1 to make this a failure.",
			redactPassword(address), admin.err, EnvPostgres, EnvRequirePostgres)
		if os.Getenv(EnvRequirePostgres) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return admin.db, admin.base
}

func connectAdmin(address string) (*sql.DB, *url.URL, error) {
	base, err := url.Parse(address)
	if err != nil || (base.Scheme != "postgres" && base.Scheme != "postgresql") {
		return nil, nil, fmt.Errorf("%s must be a postgres:// URL", EnvPostgres)
	}
	db, err := sql.Open(DriverPostgres, address)
	if err != nil {
		return nil, nil, err
	}
	db.SetMaxOpenConns(2)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err = db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	return db, base, nil
}

func redactPassword(address string) string {
	if u, err := url.Parse(address); err == nil {
		return u.Redacted()
	}
	return "(unparseable address)"
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		t.Fatalf("dbtest: failed to read random bytes: %v", err)
	}
	return hex.EncodeToString(buf)
}
