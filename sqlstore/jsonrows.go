package sqlstore

import (
	"context"
	"encoding/hex"
	"strconv"

	"go.mau.fi/util/dbutil"
)

// Batches on SQLite. A multi-row VALUES list makes a new statement text for
// every batch size, with a placeholder per value, and SQLite parses and
// compiles all of it on every call: for a thousand-row history blob the
// compiling took about a third of the plugin's whole write. Where SQLite
// has json_each and unhex (3.41 and later; the SQLite that go-sqlite3
// bundles has them), a batch's rows go as one JSON array parameter instead,
// in a statement whose text is the same for every batch. An older SQLite
// linked in from the system gets the VALUES lists.

const (
	sqliteRowsUnknown int32 = iota
	sqliteRowsJSON
	sqliteRowsValues
)

// sqliteJSONProbe fails on a SQLite without json_each or unhex.
const sqliteJSONProbe = `SELECT unhex('00'), (SELECT count(*) FROM json_each('[1]'))`

// rowsAsJSON reports whether batches go to SQLite as a JSON parameter,
// asking once per container (Upgrade asks). Never on PostgreSQL, which
// takes arrays (see pgarray.go). Inside a transaction it never asks: a
// read as the transaction's first statement would pin its snapshot, and
// its first write would then fail at once (SQLITE_BUSY_SNAPSHOT) whenever
// another connection wrote meanwhile; the batch goes as a VALUES list
// then. A probe that fails for another reason than a missing function (a
// cancelled context) answers no for this call only.
func (s *Store) rowsAsJSON(ctx context.Context) bool {
	if s.db.Dialect != dbutil.SQLite {
		return false
	}
	switch s.c.sqliteRows.Load() {
	case sqliteRowsJSON:
		return true
	case sqliteRowsValues:
		return false
	}
	if s.InTransaction(ctx) {
		return false
	}
	var one []byte
	var count int
	err := s.db.QueryRow(ctx, sqliteJSONProbe).Scan(&one, &count)
	switch {
	case err == nil && count == 1 && len(one) == 1:
		s.c.sqliteRows.Store(sqliteRowsJSON)
		return true
	case err != nil && ctx.Err() != nil:
		return false
	}
	s.c.sqliteRows.Store(sqliteRowsValues)
	return false
}

// jsonRows builds the JSON array of a batch's rows, each an array of
// values appended by the row function through the jsonRow it is given.
type jsonRows struct{ b []byte }

func newJSONRows(rows int) *jsonRows {
	b := make([]byte, 1, rows*96+2)
	b[0] = '['
	return &jsonRows{b: b}
}

// row starts a row; the values follow.
func (j *jsonRows) row() {
	if len(j.b) > 1 {
		j.b = append(j.b, ',')
	}
	j.b = append(j.b, '[')
}

func (j *jsonRows) sep() {
	if c := j.b[len(j.b)-1]; c != '[' {
		j.b = append(j.b, ',')
	}
}

func (j *jsonRows) str(v string) {
	j.sep()
	j.b = appendJSONString(j.b, v)
}

// hex writes bytes as a hex string, for unhex() in the statement.
func (j *jsonRows) hex(v []byte) {
	j.sep()
	j.b = append(j.b, '"')
	j.b = hex.AppendEncode(j.b, v)
	j.b = append(j.b, '"')
}

func (j *jsonRows) int(v int64) {
	j.sep()
	j.b = strconv.AppendInt(j.b, v, 10)
}

// intOrNull writes 0 as null: no value.
func (j *jsonRows) intOrNull(v int64) {
	if v == 0 {
		j.sep()
		j.b = append(j.b, "null"...)
		return
	}
	j.int(v)
}

func (j *jsonRows) end() { j.b = append(j.b, ']') }

// text is the finished array.
func (j *jsonRows) text() string { return string(append(j.b, ']')) }

// secretText is the finished array when it holds tokens.
func (j *jsonRows) secretText() secretText { return secretText(j.text()) }

// jsonStrings is the JSON array of strings.
func jsonStrings(items []string) string {
	b := make([]byte, 1, len(items)*20+2)
	b[0] = '['
	for i, item := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, item)
	}
	return string(append(b, ']'))
}

// appendJSONString appends s as a JSON string. Contacts are valid UTF-8
// without NUL bytes (CheckContact), so only quotes, backslashes and control
// characters need escaping.
func appendJSONString(b []byte, s string) []byte {
	const digits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', digits[c>>4], digits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
