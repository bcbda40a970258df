package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"

	_ "github.com/lib/pq"           // PostgreSQL, for --db postgres://…
	_ "github.com/mattn/go-sqlite3" // SQLite, the default
	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/store/sqlstore/upgrades"
	waLog "go.mau.fi/whatsmeow/util/log"
)

// dbAddress is a database address split into what database/sql and dbutil
// need.
type dbAddress struct {
	Driver string // database/sql driver name, which is also dbutil's dialect
	DSN    string // what the driver opens
}

// parseDBAddress picks the dialect from the scheme, as whatsmeow's sqlstore
// users write it: postgres:// or postgresql:// is PostgreSQL; file:… or a
// bare path is SQLite. SQLite gets foreign keys switched on if the address
// does not say, since whatsmeow's schema relies on them.
func parseDBAddress(addr string) (dbAddress, error) {
	if addr == "" {
		return dbAddress{}, fmt.Errorf("empty database address")
	}
	if scheme, _, ok := strings.Cut(addr, "://"); ok {
		switch strings.ToLower(scheme) {
		case "postgres", "postgresql":
			return dbAddress{Driver: "postgres", DSN: addr}, nil
		default:
			return dbAddress{}, fmt.Errorf("unsupported database scheme %q (use postgres:// or file:)", scheme)
		}
	}
	dsn := addr
	if !strings.HasPrefix(dsn, "file:") {
		dsn = "file:" + dsn
	}
	path, query, _ := strings.Cut(dsn, "?")
	params, err := url.ParseQuery(query)
	if err != nil {
		return dbAddress{}, fmt.Errorf("parse SQLite options in %q: %w", addr, err)
	}
	if params.Get("_foreign_keys") == "" && params.Get("_fk") == "" {
		params.Set("_foreign_keys", "on")
	}
	return dbAddress{Driver: "sqlite3", DSN: path + "?" + params.Encode()}, nil
}

// openStore opens the one database that backs both whatsmeow's store and
// the plugin, the way mautrix bridges do: a *dbutil.Database wrapping the
// pool, and whatsmeow's container built on it. The caller closes db.
func openStore(ctx context.Context, addr string, log zerolog.Logger) (*dbutil.Database, *sqlstore.Container, error) {
	parsed, err := parseDBAddress(addr)
	if err != nil {
		return nil, nil, err
	}
	raw, err := sql.Open(parsed.Driver, parsed.DSN)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s database: %w", parsed.Driver, err)
	}
	db, err := dbutil.NewWithDB(raw, parsed.Driver)
	if err != nil {
		_ = raw.Close()
		return nil, nil, fmt.Errorf("wrap %s database: %w", parsed.Driver, err)
	}
	// Ping first so that a wrong address fails with the driver's own words,
	// not halfway through a schema upgrade.
	if err = raw.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, nil, fmt.Errorf("connect to %s database: %w", parsed.Driver, err)
	}
	// whatsmeow's tables get their own version table, as in mautrix
	// bridges; the plugin keeps its own too, so the two upgrade apart.
	storeLog := log.With().Str("component", "sqlstore").Logger()
	whatsmeowDB := db.Child("whatsmeow_version", upgrades.Table, dbutil.ZeroLogger(storeLog))
	container := sqlstore.NewWithWrappedDB(whatsmeowDB, waLog.Zerolog(storeLog))
	if err = container.Upgrade(ctx); err != nil {
		_ = db.Close()
		return nil, nil, fmt.Errorf("upgrade whatsmeow's tables: %w", err)
	}
	log.Debug().Str("dialect", parsed.Driver).Msg("Database ready")
	return db, container, nil
}
