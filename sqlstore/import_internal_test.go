package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/internal/dbtest"
)

// The pass over whatsmeow's table compares with the plugin's rows in joins
// on SQLite and in scalar subqueries on PostgreSQL (importStatements). Both
// forms must hand over and copy the same rows: here they run on the same
// tables, on both databases, with every case the rules tell apart mixed in
// each key range: the plugin's row under the contact's own key, under the
// other key of whatsmeow's LID map (either way round), under both or
// neither; its token older, newer, the same bytes with another timestamp,
// or none (a sender timestamp only); sender timestamps older and newer;
// whatsmeow's tokens expired at the cutoff; and another account's rows.
func TestImportFormsAgree(t *testing.T) {
	for _, withSender := range []bool{false, true} {
		t.Run(fmt.Sprintf("sender_timestamp column %v", withSender), func(t *testing.T) {
			dbtest.ForEachDialect(t, func(t *testing.T, db *dbutil.Database) {
				testImportFormsAgree(t, db, withSender)
			})
		})
	}
}

func testImportFormsAgree(t *testing.T, db *dbutil.Database, withSender bool) {
	ctx := context.Background()
	dbtest.WhatsmeowContainer(t, db)
	sender := importNoSender
	if withSender {
		sender = importSenderColumn
		exists, err := db.ColumnExists(ctx, WhatsmeowTokensTable, "sender_timestamp")
		if err != nil {
			t.Fatal(err)
		} else if !exists {
			if _, err := db.Exec(ctx, `ALTER TABLE whatsmeow_privacy_tokens ADD COLUMN sender_timestamp BIGINT`); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := New(db)
	if err := c.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	our := types.NewADJID("111", 0, 3)
	other := types.NewADJID("222", 0, 7)
	s := c.ForAccount(our)

	const (
		contacts = 1500
		cutoff   = 5000
		now      = 9000
	)
	rng := rand.New(rand.NewPCG(20, 7))
	var keys []string
	err := db.DoTxn(ctx, nil, func(ctx context.Context) error {
		exec := func(query string, args ...any) error {
			_, err := db.Exec(ctx, query, args...)
			return err
		}
		for i := range contacts {
			pn := fmt.Sprintf("1%05d@s.whatsapp.net", i)
			lid := fmt.Sprintf("2%05d@lid", i)
			paired := i%4 != 0
			if paired {
				if err := exec(`INSERT INTO whatsmeow_lid_map (lid, pn) VALUES ($1, $2)`, lid[:6], pn[:6]); err != nil {
					return err
				}
			}
			// whatsmeow's row, under the number or the LID.
			key, otherKey := lid, pn
			if rng.IntN(2) == 0 {
				key, otherKey = pn, lid
			}
			token := []byte(fmt.Sprintf("w%d", i))
			ts := int64(cutoff - 1000 + rng.IntN(3000))
			if err := exec(insertWhatsmeowRow, our.String(), key, token, ts); err != nil {
				return err
			}
			keys = append(keys, key)
			if withSender {
				var senderTS any
				switch rng.IntN(3) {
				case 1:
					senderTS = int64(0)
				case 2:
					senderTS = int64(4000 + rng.IntN(2000))
				}
				if err := exec(`UPDATE whatsmeow_privacy_tokens SET sender_timestamp=$1 WHERE our_jid=$2 AND their_jid=$3`, senderTS, our.String(), key); err != nil {
					return err
				}
			}
			// The plugin's rows: under whatsmeow's key, the other one, both
			// or neither.
			for _, at := range []string{key, otherKey} {
				if rng.IntN(3) != 0 {
					continue
				}
				var pToken []byte
				var pTS, pSender any
				switch rng.IntN(5) {
				case 0: // a sender timestamp only
				case 1: // the same bytes
					pToken, pTS = token, ts+int64(rng.IntN(3))-1
				default:
					pToken, pTS = []byte(fmt.Sprintf("p%d", i)), ts+int64(rng.IntN(3))-1
				}
				if rng.IntN(2) == 0 || pToken == nil {
					pSender = int64(4000 + rng.IntN(2000))
				}
				if err := exec(`INSERT INTO tctoken_tokens (our_jid, their_jid, token, token_ts, sender_ts, updated_at) VALUES ($1, $2, $3, $4, $5, 1)`,
					our.String(), at, pToken, pTS, pSender); err != nil {
					return err
				}
			}
			// Another account holds the same contact.
			if i%7 == 0 {
				if err := exec(insertWhatsmeowRow, other.String(), key, token, ts); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	// The whole account, and three ranges whose bounds fall on keys.
	ranges := [][2]string{{"", "~"}, {"", keys[400]}, {keys[400], keys[1100]}, {keys[1100], "~"}}

	subRead, subCopy := importStatementsJoined(false, sender)
	joinRead, joinCopy := importStatementsJoined(true, sender)
	check := TokenChecks{LatestTS: now, MaxSize: 1024}
	errRollBack := errors.New("roll back")
	for _, r := range ranges {
		sub, err := s.readImportBatch(ctx, subRead, r[0], r[1], cutoff)
		if err != nil {
			t.Fatal(err)
		}
		joined, err := s.readImportBatch(ctx, joinRead, r[0], r[1], cutoff)
		if err != nil {
			t.Fatal(err)
		}
		if len(sub) == 0 || len(sub) == len(keys) {
			t.Fatalf("(%q, %q]: %d rows handed over, want some but not all: the data set tests nothing", r[0], r[1], len(sub))
		}
		sortTokens(sub)
		sortTokens(joined)
		if !reflect.DeepEqual(sub, joined) {
			t.Fatalf("(%q, %q]: the join form hands over other rows than the subquery form:\n%s", r[0], r[1], tokenDiff(sub, joined))
		}
		// Each copy in a transaction rolled back, what it left compared.
		except := []string{sub[0].Contact, sub[len(sub)/2].Contact}
		var tables [2][]string
		for i, copyQuery := range []string{subCopy, joinCopy} {
			err := db.DoTxn(ctx, nil, func(ctx context.Context) error {
				if err := s.copyImportBatch(ctx, copyQuery, r[0], r[1], cutoff, check, except); err != nil {
					return err
				}
				rows, err := db.Query(ctx, `SELECT our_jid, their_jid, token, token_ts, sender_ts FROM tctoken_tokens ORDER BY our_jid, their_jid`)
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
					var account, contact string
					var token []byte
					var tokenTS, senderTS *int64
					if err := rows.Scan(&account, &contact, &token, &tokenTS, &senderTS); err != nil {
						return err
					}
					tables[i] = append(tables[i], fmt.Sprintf("%s %s %q %v %v", account, contact, token, deref(tokenTS), deref(senderTS)))
				}
				if err := rows.Err(); err != nil {
					return err
				}
				return errRollBack
			})
			if !errors.Is(err, errRollBack) {
				t.Fatal(err)
			}
		}
		if !reflect.DeepEqual(tables[0], tables[1]) {
			t.Fatalf("(%q, %q]: the join form's copy leaves other rows than the subquery form's:\n%s", r[0], r[1], lineDiff(tables[0], tables[1]))
		}
	}
}

const insertWhatsmeowRow = `INSERT INTO whatsmeow_privacy_tokens (our_jid, their_jid, token, timestamp) VALUES ($1, $2, $3, $4)`

func sortTokens(rows []WhatsmeowToken) {
	sort.Slice(rows, func(i, j int) bool { return rows[i].Contact < rows[j].Contact })
}

func deref(v *int64) any {
	if v == nil {
		return nil
	}
	return *v
}

func tokenDiff(a, b []WhatsmeowToken) string {
	format := func(rows []WhatsmeowToken) []string {
		lines := make([]string, len(rows))
		for i, row := range rows {
			lines[i] = fmt.Sprintf("%s %q %d %d %v", row.Contact, row.Token, row.TokenTS, row.SenderTS, row.TokenNewer)
		}
		return lines
	}
	return lineDiff(format(a), format(b))
}

// lineDiff lists the lines only one side holds.
func lineDiff(a, b []string) string {
	seen := make(map[string]int)
	for _, line := range a {
		seen[line]++
	}
	for _, line := range b {
		seen[line]--
	}
	var out string
	for line, n := range seen {
		if n > 0 {
			out += "subquery only: " + line + "\n"
		} else if n < 0 {
			out += "join only:     " + line + "\n"
		}
	}
	return out
}
