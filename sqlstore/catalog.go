package sqlstore

import (
	"context"
	"fmt"

	"go.mau.fi/util/dbutil"
)

// The plugin asks whether whatsmeow's tables (and its own) exist before it
// reads them, and which shape of whatsmeow's token table it writes to. It
// does not ask dbutil (TableExists, ColumnExists): on PostgreSQL those search
// information_schema, which lists every schema the role may read, so a
// whatsmeow table in another schema would answer for the plugin's own, whose
// unqualified statements then fail; and information_schema's views are slow
// to plan on a new connection, in the burst of statements that delays the
// first send after Enable. to_regclass resolves a name through the
// connection's search_path, exactly as the plugin's unqualified statements
// do, and pg_attribute is then looked up by that relation's id.
//
// On SQLite, unqualified names resolve in the connection's own database (and
// pragma_table_info searches its schemas in the same order), as dbutil asks.
const (
	tableVisiblePostgres = `SELECT to_regclass($1) IS NOT NULL`
	// pragma_table_info, as for a column: it finds a table where an
	// unqualified statement would (temp, main, then attached databases),
	// which sqlite_master, main's alone, does not.
	tableVisibleSQLite = `SELECT EXISTS(SELECT 1 FROM pragma_table_info(?1))`

	// attnum > 0 leaves out the system columns (ctid, xmin...); a dropped
	// column keeps its pg_attribute row, renamed, with attisdropped set.
	columnVisiblePostgres = `
		SELECT EXISTS(
			SELECT 1 FROM pg_attribute
			WHERE attrelid=to_regclass($1) AND attname=$2 AND attnum > 0 AND NOT attisdropped
		)`
	columnVisibleSQLite = `SELECT EXISTS(SELECT 1 FROM pragma_table_info(?1) WHERE name=?2)`
)

// TableVisible reports whether an unqualified statement on db would find
// table: on PostgreSQL, in a schema on the connection's search_path. The
// name is read as a statement would read it unquoted (to_regclass folds
// upper case and takes a dot for a schema); the plugin passes its own
// constant, lower-case names.
func TableVisible(ctx context.Context, db *dbutil.Database, table string) (bool, error) {
	return askVisible(ctx, db, "table "+table, tableVisiblePostgres, tableVisibleSQLite, table)
}

// ColumnVisible reports whether the table an unqualified statement on db
// would find has column. A table it would not find has no columns.
func ColumnVisible(ctx context.Context, db *dbutil.Database, table, column string) (bool, error) {
	return askVisible(ctx, db, "column "+column+" of "+table, columnVisiblePostgres, columnVisibleSQLite, table, column)
}

// askVisible runs the dialect's form of a catalog question; what names it
// in errors.
func askVisible(ctx context.Context, db *dbutil.Database, what, postgres, sqlite string, args ...any) (bool, error) {
	var query string
	switch db.Dialect {
	case dbutil.Postgres:
		query = postgres
	case dbutil.SQLite:
		query = sqlite
	default:
		return false, fmt.Errorf("look for %s: %w", what, dbutil.ErrUnsupportedDialect)
	}
	var visible bool
	if err := db.QueryRow(ctx, query, args...).Scan(&visible); err != nil {
		return false, fmt.Errorf("look for %s: %w", what, err)
	}
	return visible, nil
}
