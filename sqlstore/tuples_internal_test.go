package sqlstore

import (
	"testing"

	"go.mau.fi/util/dbutil"
)

// The value tuples of multi-row statements, in each dialect's own syntax.
func TestTuples(t *testing.T) {
	for _, tc := range []struct {
		dialect             dbutil.Dialect
		count, width, first int
		tail, want          string
	}{
		{dbutil.Postgres, 2, 3, 3, ", $2", "($1, $3, $4, $5, $2), ($1, $6, $7, $8, $2)"},
		{dbutil.SQLite, 2, 3, 3, ", $2", "(?1, ?3, ?4, ?5, ?2), (?1, ?6, ?7, ?8, ?2)"},
		{dbutil.SQLite, 1, 2, 3, ", $2", "(?1, ?3, ?4, ?2)"},
		{dbutil.Postgres, 3, 1, 2, "", "($1, $2), ($1, $3), ($1, $4)"},
	} {
		s := &Store{db: &dbutil.Database{Dialect: tc.dialect}}
		if got := s.tuples(tc.count, tc.width, tc.first, tc.tail); got != tc.want {
			t.Errorf("%s tuples(%d, %d, %d, %q) = %q; want %q", tc.dialect, tc.count, tc.width, tc.first, tc.tail, got, tc.want)
		}
	}
}
