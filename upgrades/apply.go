package upgrades

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"

	"go.mau.fi/util/dbutil"
)

// step is one embedded .sql file: it takes the schema from version from to
// version to, and leaves a schema that code knowing compat or later can use.
type step struct {
	name     string
	from, to int
	compat   int
	message  string
	lines    [][]byte
}

// The header is dbutil's file format, so that the files stay readable to
// anyone who knows dbutil: "-- v0 -> v1: message", optionally with
// " (compatible with vN+)" before the colon.
var headerRegex = regexp.MustCompile(`^-- v(\d+) -> v(\d+)(?: \(compatible with v(\d+)\+\))?: (.+)$`)

// steps is parsed once from the embedded files. The files ship inside the
// binary, so a bad one is a programming error and panics at start-up.
var steps = mustParseSteps(upgrades)

// Latest is the schema version the embedded files upgrade to.
func Latest() int {
	if len(steps) == 0 {
		return 0
	}
	return steps[len(steps)-1].to
}

func mustParseSteps(files fs.FS) []step {
	parsed, err := parseSteps(files)
	if err != nil {
		panic(fmt.Errorf("tctoken: bad embedded upgrade file: %w", err))
	}
	return parsed
}

// parseSteps reads the numbered .sql files in order and checks that they
// form one unbroken chain from version 0.
func parseSteps(files fs.FS) ([]step, error) {
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]step, 0, len(names))
	for _, name := range names {
		data, err := fs.ReadFile(files, name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		lines := bytes.Split(data, []byte("\n"))
		match := headerRegex.FindSubmatch(bytes.TrimRight(lines[0], "\r"))
		if match == nil {
			return nil, fmt.Errorf("%s: first line is not a \"-- vN -> vM: message\" header", name)
		}
		s := step{name: name, message: string(match[4]), lines: lines[1:]}
		s.from, _ = strconv.Atoi(string(match[1]))
		s.to, _ = strconv.Atoi(string(match[2]))
		s.compat = s.to
		if len(match[3]) > 0 {
			s.compat, _ = strconv.Atoi(string(match[3]))
		}
		want := 0
		if len(out) > 0 {
			want = out[len(out)-1].to
		}
		if s.from != want || s.to <= s.from {
			return nil, fmt.Errorf("%s: upgrades v%d -> v%d, but the chain is at v%d", name, s.from, s.to, want)
		}
		out = append(out, s)
	}
	return out, nil
}

const (
	// The version table holds one row. dbutil's layout (version, compat) is
	// kept, so that databases upgraded by earlier tctoken releases, which
	// used dbutil's upgrader, read the same.
	getVersionQuery    = `SELECT version, compat FROM ` + VersionTable + ` LIMIT 1`
	deleteVersionQuery = `DELETE FROM ` + VersionTable
	insertVersionQuery = `INSERT INTO ` + VersionTable + ` (version, compat) VALUES ($1, $2)`
)

// applySteps brings the schema to Latest inside the caller's transaction.
// util's upgrade-table API differs between the versions whatsmeow 2025-12
// and later whatsmeow need (RegisterFS is gone), so the plugin applies its
// own files with the dbutil calls both versions have.
func applySteps(ctx context.Context, db *dbutil.Database) error {
	var version int
	var compat sql.NullInt64
	err := db.QueryRow(ctx, getVersionQuery).Scan(&version, &compat)
	if errors.Is(err, sql.ErrNoRows) {
		version, err = 0, nil
	}
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", VersionTable, err)
	}
	readable := version
	if compat.Valid && compat.Int64 != 0 {
		readable = int(compat.Int64)
	}
	latest := Latest()
	if readable > latest {
		return fmt.Errorf("%w: schema v%d needs code that knows v%d, this code knows up to v%d",
			dbutil.ErrUnsupportedDatabaseVersion, version, readable, latest)
	}
	if version >= latest {
		return nil
	}
	for _, s := range steps {
		if s.from < version {
			continue
		}
		query, err := db.Internals().FilterSQLUpgrade(s.lines)
		if err != nil {
			return fmt.Errorf("failed to filter %s for %s: %w", s.name, db.Dialect, err)
		}
		if _, err = db.Exec(ctx, query); err != nil {
			return fmt.Errorf("failed to apply %s (v%d -> v%d: %s): %w", s.name, s.from, s.to, s.message, err)
		}
		version, readable = s.to, s.compat
	}
	if _, err = db.Exec(ctx, deleteVersionQuery); err != nil {
		return fmt.Errorf("failed to clear %s: %w", VersionTable, err)
	}
	if _, err = db.Exec(ctx, insertVersionQuery, version, readable); err != nil {
		return fmt.Errorf("failed to record v%d in %s: %w", version, VersionTable, err)
	}
	return nil
}
