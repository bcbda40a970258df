package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// WhatsmeowTokensTable is whatsmeow's own privacy token table, in the same
// database as the plugin's.
const WhatsmeowTokensTable = "whatsmeow_privacy_tokens"

// ImportBatchSize is how many of whatsmeow's rows one import transaction
// copies: small enough that SQLite's single write lock, which sends wait on,
// is never held for long.
const ImportBatchSize = 2000

const (
	getImportQuery = `SELECT imported_at, row_count FROM tctoken_imports WHERE our_jid=$1`
	putImportQuery = `
		INSERT INTO tctoken_imports (our_jid, imported_at, row_count) VALUES ($1, $2, $3)
		ON CONFLICT (our_jid) DO UPDATE SET imported_at=excluded.imported_at, row_count=excluded.row_count
	`
	// The key ImportBatchSize rows past the last one imported: the upper
	// bound of the next batch. No row means the next batch is the last.
	importBoundQuery = `
		SELECT their_jid FROM whatsmeow_privacy_tokens
		WHERE our_jid=$1 AND their_jid > $2 ORDER BY their_jid LIMIT 1 OFFSET $3
	`
	// One batch, merged: a token the plugin already holds wins (see
	// importNewerCondition), and the sender timestamp only moves forward. whatsmeow 2025-12 has no sender timestamp column (%s is then
	// NULL); the newer whatsmeow writes 0 for "none". The WHERE in the
	// SELECT also settles SQLite's INSERT ... SELECT ... ON CONFLICT parse.
	// Tokens already expired ($5 is the receiver cutoff) stay behind: they
	// would only be pruned again.
	importBatchQuery = `
		INSERT INTO tctoken_tokens (our_jid, their_jid, token, token_ts, sender_ts, updated_at)
		SELECT our_jid, their_jid, token, timestamp, %s, $4 FROM whatsmeow_privacy_tokens
		WHERE our_jid=$1 AND their_jid > $2 AND ($3 = '' OR their_jid <= $3)
			AND token IS NOT NULL AND length(token) > 0 AND timestamp >= $5
		ON CONFLICT (our_jid, their_jid) DO UPDATE SET
			token = CASE WHEN ` + importNewerCondition + ` THEN excluded.token ELSE tctoken_tokens.token END,
			token_ts = CASE WHEN ` + importNewerCondition + ` THEN excluded.token_ts ELSE tctoken_tokens.token_ts END,
			sender_ts = CASE WHEN excluded.sender_ts IS NOT NULL
					AND (tctoken_tokens.sender_ts IS NULL OR excluded.sender_ts > tctoken_tokens.sender_ts)
				THEN excluded.sender_ts ELSE tctoken_tokens.sender_ts END,
			updated_at = excluded.updated_at
	`
	// A token the plugin already holds wins, whatever the timestamps. The
	// import runs once, on the account's first bind, so the plugin's rows
	// then are only those written since: every one of them went through the
	// plugin first, and was written through to whatsmeow's table, which
	// holds the same or, caught mid-correction (a history-sync mend written
	// through a moment later), a misfiled newer timestamp.
	importNewerCondition = `tctoken_tokens.token IS NULL`
	importSenderColumn   = `NULLIF(sender_timestamp, 0)`
	importNoSender       = `CAST(NULL AS BIGINT)`
)

// Imported reports whether whatsmeow's tokens were already imported for this
// account.
func (s *Store) Imported(ctx context.Context) (bool, error) {
	var at, rows int64
	err := s.db.QueryRow(ctx, getImportQuery, s.ourJID).Scan(&at, &rows)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("tctoken: failed to read the import status of %s: %w", s.ourJID, err)
	}
	return true, nil
}

// ImportWhatsmeowTokens copies this account's rows from whatsmeow's own token
// table into the plugin's, in batches of ImportBatchSize, each its own
// transaction, and then records that the import ran. A token the plugin
// already holds is kept, and sender timestamps only move forward, so running
// it again changes nothing that matters. Tokens older than recvCutoff (expired on
// the receiver side) are not copied. afterBatch (may be nil) runs after each
// committed batch. A database without whatsmeow's table imports nothing and
// is recorded as imported. It returns how many rows were merged.
func (s *Store) ImportWhatsmeowTokens(ctx context.Context, recvCutoff int64, afterBatch func()) (int64, error) {
	recvCutoff = max(recvCutoff, 0)
	exists, err := s.db.TableExists(ctx, WhatsmeowTokensTable)
	if err != nil {
		return 0, fmt.Errorf("tctoken: failed to look for %s while importing for %s: %w", WhatsmeowTokensTable, s.ourJID, err)
	}
	var total int64
	if exists {
		sender := importNoSender
		if has, err := s.db.ColumnExists(ctx, WhatsmeowTokensTable, "sender_timestamp"); err != nil {
			return 0, fmt.Errorf("tctoken: failed to inspect %s while importing for %s: %w", WhatsmeowTokensTable, s.ourJID, err)
		} else if has {
			sender = importSenderColumn
		}
		query := fmt.Sprintf(importBatchQuery, sender)
		after := ""
		for {
			var upper string
			err := s.db.QueryRow(ctx, importBoundQuery, s.ourJID, after, ImportBatchSize-1).Scan(&upper)
			if errors.Is(err, sql.ErrNoRows) {
				upper = ""
			} else if err != nil {
				return total, fmt.Errorf("tctoken: failed to page whatsmeow's tokens of %s after %q: %w", s.ourJID, after, err)
			}
			res, err := s.db.Exec(ctx, query, s.ourJID, after, upper, s.now(), recvCutoff)
			if err != nil {
				return total, fmt.Errorf("tctoken: failed to import whatsmeow's tokens of %s after %q: %w", s.ourJID, after, err)
			}
			n, _ := res.RowsAffected()
			total += n
			if afterBatch != nil {
				afterBatch()
			}
			if upper == "" {
				break
			}
			after = upper
		}
	}
	if _, err := s.db.Exec(ctx, putImportQuery, s.ourJID, s.now(), total); err != nil {
		return total, fmt.Errorf("tctoken: failed to record the import for %s: %w", s.ourJID, err)
	}
	return total, nil
}
