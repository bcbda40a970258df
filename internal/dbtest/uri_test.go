package dbtest

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// A repeated subtest name ("dup#01") must still give a database file in the
// subtest's own temp dir, not one cut short at the '#' and shared with any
// process that runs a test of the same name.
func TestSQLiteURIWithHash(t *testing.T) {
	for range 2 {
		t.Run("dup", func(t *testing.T) {
			db := SQLite(t)
			var file string
			if err := db.QueryRow(context.Background(), "SELECT file FROM pragma_database_list WHERE name='main'").Scan(&file); err != nil {
				t.Fatal(err)
			}
			if filepath.Base(file) != "tctoken.db" || !strings.Contains(file, strings.ReplaceAll(t.Name(), "/", "")) {
				t.Fatalf("%s opened %q, not a file in its own temp dir", t.Name(), file)
			}
		})
	}
}
