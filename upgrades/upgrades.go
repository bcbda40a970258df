// Package upgrades holds the schema of the tctoken tables and brings a
// database up to date with it.
package upgrades

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mau.fi/util/dbutil"
)

// VersionTable is where dbutil records the version of the tctoken schema. It
// is ours alone: sharing whatsmeow_version would make whatsmeow and tctoken
// read each other's version numbers as their own.
const VersionTable = "tctoken_version"

// upgrades holds the schema upgrades, one numbered .sql file each, applied
// in order by applySteps.
//
//go:embed *.sql
var upgrades embed.FS

const (
	// dbutil checks whether the version table exists through
	// information_schema, which on PostgreSQL sees every schema the role can
	// read, not only the one on the search path. A tctoken_version in another
	// schema would make dbutil skip creating ours and then fail to read it.
	// Creating it here, in the current schema and with dbutil's columns, makes
	// that check moot.
	createVersionTableQuery = `CREATE TABLE IF NOT EXISTS ` + VersionTable + ` (version INTEGER, compat INTEGER)`

	// dbutil reads the version and then upgrades, which two processes starting
	// at once would both do. Everything below runs in one transaction, and on
	// PostgreSQL that transaction first takes an advisory lock, so the second
	// process waits and then finds the schema already current. The key is
	// derived from the schema name so that deployments in separate schemas of
	// one database do not wait for each other.
	lockPostgresQuery = `SELECT pg_advisory_xact_lock(hashtext($1::text || '.' || coalesce(current_schema(), '')))`
)

// SQLite has no advisory locks, and a deferred transaction cannot be made to
// take the write lock up front. Two processes upgrading at once therefore make
// one of them fail with SQLITE_BUSY; it rolls back and tries again, and then
// finds the schema already current.
const (
	sqliteBusyAttempts = 20
	sqliteBusyBackoff  = 25 * time.Millisecond
)

// Upgrade creates or upgrades the tctoken tables in db, recording their
// version in [VersionTable]. It is safe to call from several processes that
// share the database at the same time.
//
// db may be the same *dbutil.Database whatsmeow uses: the upgrade runs on a
// child that shares its connection pool and logger but not its version table.
func Upgrade(ctx context.Context, db *dbutil.Database) error {
	// The child shares the pool and logger; its own (empty) upgrade table is
	// never used, since applySteps applies the files.
	child := db.Child(VersionTable, nil, nil)
	for attempt := 1; ; attempt++ {
		err := upgradeOnce(ctx, child)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, dbutil.ErrUnsupportedDatabaseVersion):
			return fmt.Errorf("tctoken: the database holds a newer tctoken schema (see table %s) than this version of tctoken knows; a downgrade is not supported: %w", VersionTable, err)
		case child.Dialect == dbutil.SQLite && attempt < sqliteBusyAttempts && isSQLiteBusy(err):
			select {
			case <-ctx.Done():
				return fmt.Errorf("tctoken: failed to upgrade database tables: %w (while waiting for another upgrade after: %w)", ctx.Err(), err)
			case <-time.After(time.Duration(attempt) * sqliteBusyBackoff):
			}
		default:
			return fmt.Errorf("tctoken: failed to upgrade database tables: %w", err)
		}
	}
}

func upgradeOnce(ctx context.Context, db *dbutil.Database) error {
	// Reading the version, every step and recording the new version run in
	// this one transaction, behind the lock.
	return db.DoTxn(ctx, nil, func(ctx context.Context) error {
		if db.Dialect == dbutil.Postgres {
			if _, err := db.Exec(ctx, lockPostgresQuery, VersionTable); err != nil {
				return fmt.Errorf("failed to take the upgrade lock: %w", err)
			}
		}
		if _, err := db.Exec(ctx, createVersionTableQuery); err != nil {
			return fmt.Errorf("failed to create %s: %w", VersionTable, err)
		}
		return applySteps(ctx, db)
	})
}

// isSQLiteBusy matches SQLITE_BUSY and SQLITE_LOCKED by message, so that this
// package does not tie the caller to one SQLite driver.
func isSQLiteBusy(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "database is locked") ||
		strings.Contains(msg, "database table is locked") ||
		strings.Contains(msg, "SQLITE_BUSY")
}
