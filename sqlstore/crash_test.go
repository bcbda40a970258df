package sqlstore_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/internal/dbtest"
	"github.com/tctoken/tctoken/sqlstore"
)

// crashBatch is the size of the batches the child writes: ten statements of
// putTokensChunk rows, in one transaction.
const crashBatch = 5000

// TestCrashMidBatch runs a child process that writes large token batches in
// a loop, kills it with SIGKILL while it writes, and checks that every batch
// is wholly there or wholly absent, and that the next start (an upgrade, a
// write, a read) runs normally.
func TestCrashMidBatch(t *testing.T) {
	if spec := os.Getenv("TCTOKEN_CRASH_CHILD"); spec != "" {
		crashChild(spec)
		return
	}
	for _, driver := range []string{dbtest.DriverSQLite, dbtest.DriverPostgres} {
		t.Run(driver, func(t *testing.T) {
			var uri string
			if driver == dbtest.DriverSQLite {
				uri = dbtest.SQLiteURI(t)
			} else {
				uri = dbtest.PostgresURI(t)
			}
			// Create the tables first, so the child only writes.
			newContainer(t, dbtest.Open(t, driver, uri))

			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashMidBatch$")
			cmd.Env = append(os.Environ(), "TCTOKEN_CRASH_CHILD="+driver+" "+uri)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewScanner(out)
			committed := 0
			for lines.Scan() {
				line := lines.Text()
				if strings.HasPrefix(line, "committed ") {
					committed++
				}
				// Kill it after two whole batches, in the middle of the third:
				// it starts writing right after it says so.
				if line == "begin 3" {
					time.Sleep(20 * time.Millisecond)
					break
				}
			}
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			if committed < 2 {
				t.Fatalf("the child committed %d batches before the kill; want 2", committed)
			}

			// The next start: upgrade, read, write.
			db := dbtest.Open(t, driver, uri)
			s := newContainer(t, db).ForAccount(ourJID)
			var rows int
			if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM tctoken_tokens WHERE our_jid=$1`, ourJID.String()).Scan(&rows); err != nil {
				t.Fatal(err)
			}
			if rows%crashBatch != 0 || rows < committed*crashBatch {
				t.Fatalf("%d rows after the crash: not whole batches of %d (the child reported %d committed)", rows, crashBatch, committed)
			}
			t.Logf("killed after %d committed batches: %d rows, whole batches only", committed, rows)
			put(t, s, sqlstore.TokenWrite{Contact: alicePN, Token: []byte("after"), TokenTS: 1})
			assertEntry(t, get(t, s, alicePN), sqlstore.Entry{Contact: alicePN, Token: []byte("after"), TokenTS: 1})
		})
	}
}

// crashChild writes batches of crashBatch tokens until it is killed,
// saying on stdout when each begins and when it committed.
func crashChild(spec string) {
	driver, uri, _ := strings.Cut(spec, " ")
	raw, err := sql.Open(driver, uri)
	if err != nil {
		panic(err)
	}
	db, err := dbutil.NewWithDB(raw, driver)
	if err != nil {
		panic(err)
	}
	s := sqlstore.New(db).ForAccount(ourJID)
	for batch := 1; ; batch++ {
		writes := make([]sqlstore.TokenWrite, crashBatch)
		for i := range writes {
			writes[i] = sqlstore.TokenWrite{Contact: types.NewJID(fmt.Sprintf("%d%09d", batch, i), types.HiddenUserServer), Token: []byte("crash"), TokenTS: 100}
		}
		fmt.Printf("begin %d\n", batch)
		if _, err := s.PutTokens(context.Background(), writes...); err != nil {
			panic(err)
		}
		fmt.Printf("committed %d\n", batch)
	}
}
