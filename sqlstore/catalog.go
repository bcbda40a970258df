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
	tableVisibleSQLite   = `SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1)`

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
// table: on PostgreSQL, in a schema on the connection's search_path.
func TableVisible(ctx context.Context, db *dbutil.Database, table string) (bool, error) {
	var query string
	switch db.Dialect {
	case dbutil.Postgres:
		query = tableVisiblePostgres
	case dbutil.SQLite:
		query = tableVisibleSQLite
	default:
		return false, fmt.Errorf("look for table %s: %w", table, dbutil.ErrUnsupportedDialect)
	}
	var visible bool
	if err := db.QueryRow(ctx, query, table).Scan(&visible); err != nil {
		return false, fmt.Errorf("look for table %s: %w", table, err)
	}
	return visible, nil
}

// ColumnVisible reports whether the table an unqualified statement on db
// would find has column. A table it would not find has no columns.
func ColumnVisible(ctx context.Context, db *dbutil.Database, table, column string) (bool, error) {
	var query string
	switch db.Dialect {
	case dbutil.Postgres:
		query = columnVisiblePostgres
	case dbutil.SQLite:
		query = columnVisibleSQLite
	default:
		return false, fmt.Errorf("look for column %s of %s: %w", column, table, dbutil.ErrUnsupportedDialect)
	}
	var visible bool
	if err := db.QueryRow(ctx, query, table, column).Scan(&visible); err != nil {
		return false, fmt.Errorf("look for column %s of %s: %w", column, table, err)
	}
	return visible, nil
}
