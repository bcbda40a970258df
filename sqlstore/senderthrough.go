package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"
)

// The sender timestamps of an issuance, copied into whatsmeow's own token
// table (whatsmeow 33cfac51 has the column), so that whatsmeow alone, after
// the plugin is removed, does not issue again within the bucket. Through
// whatsmeow's store that is a read and a write per contact; when its table
// is in the plugin's database (see SharesTransactions) it is one statement
// for the whole issuance.
//
// whatsmeow reads a contact's row under the key asked for or under its twin
// by the LID map, the newest of the two, so the statement sets the rows
// under both: whichever whatsmeow picks carries the timestamp. It sets only
// rows that hold a token, as whatsmeow's own issuance does (a contact
// without a token has no row to carry it), and never an older timestamp
// over a newer one.
const (
	setWhatsmeowSenderQuery = `
		WITH u(k) AS (%s)
		UPDATE whatsmeow_privacy_tokens SET sender_timestamp=$2
		WHERE our_jid=$1 AND length(token) > 0 AND (sender_timestamp IS NULL OR sender_timestamp < $2)
			AND their_jid IN (
				SELECT k FROM u
				UNION ALL
				SELECT m.pn || '@s.whatsapp.net' FROM whatsmeow_lid_map m
				WHERE m.lid IN (SELECT replace(k, '@lid', '') FROM u WHERE k LIKE '%%@lid')
				UNION ALL
				SELECT m.lid || '@lid' FROM whatsmeow_lid_map m
				WHERE m.pn IN (SELECT replace(k, '@s.whatsapp.net', '') FROM u WHERE k LIKE '%%@s.whatsapp.net')
			)
	`
	setWhatsmeowSenderArraySource = `SELECT unnest($3::text[])`
	setWhatsmeowSenderJSONSource  = `SELECT value FROM json_each(?3)`
)

// setWhatsmeowSenderStatements are the forms whose text never changes (see
// prepared.go): the contacts as a PostgreSQL array, or as one JSON array on
// SQLite, written there with SQLite's own placeholders as prepared
// statements bypass dbutil's rewriting of them.
var setWhatsmeowSenderStatements = [2]string{
	rowsArrays: fmt.Sprintf(setWhatsmeowSenderQuery, setWhatsmeowSenderArraySource),
	rowsJSON:   strings.NewReplacer("$1", "?1", "$2", "?2").Replace(fmt.Sprintf(setWhatsmeowSenderQuery, setWhatsmeowSenderJSONSource)),
}

// ErrNoWhatsmeowSenderColumn means whatsmeow's token table has no column for
// the sender timestamp: whatsmeow 2025-12, which keeps none.
var ErrNoWhatsmeowSenderColumn = errors.New("whatsmeow's token table has no sender_timestamp column")

// SetWhatsmeowSenderTimestamps records in whatsmeow's own token table of
// this account that we issued our token to contacts at ts, in one statement
// per putTokensChunk contacts, and returns how many rows it set. Only for a
// database that holds whatsmeow's tables (see SharesTransactions).
func (s *Store) SetWhatsmeowSenderTimestamps(ctx context.Context, ts int64, contacts ...types.JID) (int64, error) {
	if len(contacts) == 0 || ts <= 0 {
		return 0, nil
	}
	shape, err := s.whatsmeowTableShape(ctx)
	if err != nil {
		return 0, err
	} else if shape != whatsmeowShapeSender {
		return 0, fmt.Errorf("tctoken: copy the sender timestamp of %s into %s: %w", contactKey(contacts[0]), WhatsmeowTokensTable, ErrNoWhatsmeowSenderColumn)
	}
	keys := make([]string, len(contacts))
	for i, contact := range contacts {
		keys[i] = contactKey(contact)
	}
	asJSON := s.rowsAsJSON(ctx)
	var set int64
	for start := 0; start < len(keys); start += putTokensChunk {
		chunk := keys[start:min(start+putTokensChunk, len(keys))]
		var res sql.Result
		switch {
		case s.db.Dialect == dbutil.Postgres:
			res, err = s.execPrepared(ctx, setWhatsmeowSenderStatements[rowsArrays], s.ourJID, ts, pgTextArray(chunk))
		case asJSON:
			res, err = s.execPrepared(ctx, setWhatsmeowSenderStatements[rowsJSON], s.ourJID, ts, jsonStrings(chunk))
		default:
			args := make([]any, 2, 2+len(chunk))
			args[0], args[1] = s.ourJID, ts
			for _, key := range chunk {
				args = append(args, key)
			}
			res, err = s.db.Exec(ctx, fmt.Sprintf(setWhatsmeowSenderQuery, "VALUES "+s.tuplesOf(len(chunk), 3)), args...)
		}
		if err == nil {
			var n int64
			n, err = res.RowsAffected()
			set += n
		}
		if err != nil {
			return set, fmt.Errorf("tctoken: failed to copy the sender timestamp of %s into %s for %s: %w", nameContacts(chunk), WhatsmeowTokensTable, s.ourJID, err)
		}
	}
	return set, nil
}
