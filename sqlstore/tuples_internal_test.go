package sqlstore

import (
	"fmt"
	"strings"
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

// PostgreSQL array literals, element by element.
func TestPostgresArrayLiterals(t *testing.T) {
	if got, want := pgTextArray([]string{"1@lid", `a"b\c`, ""}), `{"1@lid","a\"b\\c",""}`; got != want {
		t.Errorf("pgTextArray = %s; want %s", got, want)
	}
	if got, want := pgTextArray(nil), `{}`; got != want {
		t.Errorf("pgTextArray(nil) = %s; want %s", got, want)
	}
	if got, want := pgInt64Array([]int64{0, -1, 1_700_000_000}), `{0,-1,1700000000}`; got != want {
		t.Errorf("pgInt64Array = %s; want %s", got, want)
	}
	tokens := pgHexArray([][]byte{{0x00, 0xff}, []byte("ab")})
	if value, _ := tokens.Value(); value != `{"00ff","6162"}` {
		t.Errorf("pgHexArray value = %v", value)
	}
	if printed := fmt.Sprintf("%v %s", tokens, tokens); strings.Contains(printed, "00ff") {
		t.Errorf("the token array printed as %q", printed)
	}
}
