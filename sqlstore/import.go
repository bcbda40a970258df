package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mau.fi/util/dbutil"
)

// WhatsmeowTokensTable is whatsmeow's own privacy token table, in the same
// database as the plugin's.
const WhatsmeowTokensTable = "whatsmeow_privacy_tokens"

// whatsmeowDevicesTable holds whatsmeow's devices: a database that has our
// device there is the one whatsmeow's store runs on.
const whatsmeowDevicesTable = "whatsmeow_device"

// ImportBatchSize is how many of whatsmeow's rows one import batch reads:
// small enough that the write of what it found, which holds SQLite's single
// write lock that sends wait on, is never long.
const ImportBatchSize = 2000

// ErrWhatsmeowNotVisible is ImportWhatsmeowTokens' answer when the plugin's
// database does not hold whatsmeow's token table for this account (the
// plugin's tables were put in a database of their own). Nothing is recorded
// then: only whatsmeow's own store can answer for its tokens.
var ErrWhatsmeowNotVisible = errors.New("tctoken: whatsmeow's token table is not in the plugin's database")

const (
	getImportQuery = `SELECT imported_at, row_count FROM tctoken_imports WHERE our_jid=$1`
	putImportQuery = `
		INSERT INTO tctoken_imports (our_jid, imported_at, row_count) VALUES ($1, $2, $3)
		ON CONFLICT (our_jid) DO UPDATE SET imported_at=excluded.imported_at, row_count=excluded.row_count
	`
	// Our device in whatsmeow's device table: the database is whatsmeow's.
	getWhatsmeowDeviceQuery = `SELECT 1 FROM whatsmeow_device WHERE jid=$1`
	// The last key of the next batch: at most ImportBatchSize keys read from
	// the primary key, which holds them, so no row is read. NULL when no key
	// is left. The batch itself is then the closed range (after, upper].
	importBoundQuery = `
		SELECT MAX(their_jid) FROM (
			SELECT their_jid FROM whatsmeow_privacy_tokens
			WHERE our_jid=$1 AND their_jid > $2 ORDER BY their_jid LIMIT $3
		) batch
	`
	// One batch: whatsmeow's rows in the key range ($2, $3] that hold more
	// than the plugin does for that contact. The plugin keys a token under
	// the contact's LID where whatsmeow may have filed it under the phone
	// number, and the other way round, so the plugin's row under the other
	// key whatsmeow's LID map pairs with it counts too. A row is taken when
	//   - its token is valid at the receiver cutoff ($4), and no row of the
	//     plugin's holds a token as new, or the same bytes (the same bytes
	//     with a newer timestamp are whatsmeow 2025-12's history-sync write,
	//     our sender timestamp filed as the token's: the plugin's own
	//     timestamp is the right one); or
	//   - its sender timestamp (the newer whatsmeow's; %[1]s) is newer than
	//     any of the plugin's rows.
	// %[2]s is where the rows come from and %[3]s and %[4]s the two tests,
	// in the database's form (see importStatements). It only reads: rows the
	// plugin already holds cost no write, so a pass over a million of them
	// takes no write lock. The last column says which: whether the token is
	// taken.
	importBatchQuery = `
		SELECT their_jid, token, timestamp, sender, token_newer FROM (
			SELECT w.their_jid, w.token, w.timestamp, %[1]s AS sender,
				CASE WHEN w.timestamp >= $4 AND %[3]s THEN 1 ELSE 0 END AS token_newer,
				CASE WHEN %[4]s THEN 1 ELSE 0 END AS sender_newer
			FROM %[2]s
			WHERE w.our_jid=$1 AND w.their_jid > $2 AND w.their_jid <= $3
		) batch
		WHERE token_newer = 1 OR sender_newer = 1
	`
	// importCopyQuery writes what importBatchQuery read, database-side, for
	// the rows whose contact is their own key and that passed the plugin's
	// checks: all but the keys the caller names (%[5]s, a NOT IN list or
	// nothing). The copy is a twentieth of writing the same rows as values
	// from Go (a 2,000-row statement to compile, 8,000 values to bind) on
	// SQLite. It repeats the read's conditions, and the checks on a token's
	// shape ($5 the latest timestamp allowed, $6 the longest token), so a
	// row that changed since the read is written only if it still passes
	// them; the rule of PutTokens decides against the plugin's row. The
	// unary plus keeps the timestamp conditions off the newer whatsmeow's
	// index on (our_jid, timestamp): with it, the copy read every valid
	// token of the account instead of the batch's key range. The WHERE
	// clause also keeps SQLite from reading ON CONFLICT as a join's ON.
	importCopyQuery = `
		INSERT INTO tctoken_tokens (our_jid, their_jid, token, token_ts, sender_ts, updated_at)
		SELECT w.our_jid, w.their_jid, w.token, w.timestamp, NULLIF(%[1]s, 0), $7
		FROM %[2]s
		WHERE w.our_jid=$1 AND w.their_jid > $2 AND w.their_jid <= $3
			AND +w.timestamp >= $4 AND +w.timestamp > 0 AND +w.timestamp <= $5
			AND length(w.token) > 0 AND length(w.token) <= $6
			AND %[3]s%[5]s
		ON CONFLICT (our_jid, their_jid) DO UPDATE SET
			token = CASE WHEN ` + tokenWins + ` THEN excluded.token ELSE tctoken_tokens.token END,
			token_ts = CASE WHEN ` + tokenWins + ` THEN excluded.token_ts ELSE tctoken_tokens.token_ts END,
			sender_ts = CASE WHEN ` + senderWins + ` THEN excluded.sender_ts ELSE tctoken_tokens.sender_ts END,
			updated_at = excluded.updated_at
		WHERE (` + tokenWins + `) OR ` + senderWins + `
	`
	// On PostgreSQL the plugin's rows are looked up one by one by key in
	// scalar subqueries, which it does not turn into a join: joined, it
	// hashed the plugin's whole table for every batch. %[1]s is the sender
	// timestamp, %[2]s the contact's other key (importPairedLID).
	importSubquerySource = `whatsmeow_privacy_tokens w`
	importTokenNewer     = `(
			SELECT 1 FROM tctoken_tokens p WHERE p.our_jid=$1 AND p.their_jid IN (w.their_jid, %[2]s)
				AND p.token IS NOT NULL AND (p.token_ts >= w.timestamp OR p.token = w.token)
			LIMIT 1
		) IS NULL`
	importSenderNewer = `(%[1]s > 0 AND (
			SELECT 1 FROM tctoken_tokens p WHERE p.our_jid=$1 AND p.their_jid IN (w.their_jid, %[2]s)
				AND p.sender_ts >= %[1]s
			LIMIT 1
		) IS NULL)`
	// The other key of w's contact in whatsmeow's LID map: the LID paired
	// with a phone number (the plugin keys a token under it), or the phone
	// number paired with a LID (a token that arrived before the LID was
	// known stays under it); NULL when the map has none.
	importPairedLID = `COALESCE((SELECT m.lid || '@lid' FROM whatsmeow_lid_map m WHERE m.pn=replace(w.their_jid, '@s.whatsapp.net', '')),
		(SELECT m.pn || '@s.whatsapp.net' FROM whatsmeow_lid_map m WHERE m.lid=replace(w.their_jid, '@lid', '')))`
	// On SQLite the same lookups are left joins, which it runs as a search
	// by key per row of the range, as it does the subqueries, but without
	// running a subquery program per row and key, which was most of the
	// read's and the copy's time in a first import. Each join finds at most one row
	// (the LID map's two keys are unique, and so is the plugin's), and a
	// test on a row a join did not find is false, as a subquery that finds
	// no row is.
	importJoinSource = `whatsmeow_privacy_tokens w
			LEFT JOIN whatsmeow_lid_map m_pn ON m_pn.pn = replace(w.their_jid, '@s.whatsapp.net', '')
			LEFT JOIN whatsmeow_lid_map m_lid ON m_lid.lid = replace(w.their_jid, '@lid', '')
			LEFT JOIN tctoken_tokens p_own ON p_own.our_jid = $1 AND p_own.their_jid = w.their_jid
			LEFT JOIN tctoken_tokens p_other ON p_other.our_jid = $1
				AND p_other.their_jid = COALESCE(m_pn.lid || '@lid', m_lid.pn || '@s.whatsapp.net')`
	importJoinTokenNewer = `NOT COALESCE(p_own.token IS NOT NULL AND (p_own.token_ts >= w.timestamp OR p_own.token = w.token), FALSE)
				AND NOT COALESCE(p_other.token IS NOT NULL AND (p_other.token_ts >= w.timestamp OR p_other.token = w.token), FALSE)`
	importJoinSenderNewer = `(%[1]s > 0 AND NOT COALESCE(p_own.sender_ts >= %[1]s, FALSE)
				AND NOT COALESCE(p_other.sender_ts >= %[1]s, FALSE))`
	// whatsmeow 2025-12 has no sender timestamp column; the newer whatsmeow
	// writes 0 for "none".
	importSenderColumn = `COALESCE(w.sender_timestamp, 0)`
	importNoSender     = `0`
)

// importExceptMark is where a batch's copy puts its NOT IN list.
const importExceptMark = "/* except */"

// importStatements are the batch read and the copy of one pass, in the
// database's form, for whatsmeow's table as it is (sender: the sender
// timestamp column, or importNoSender). copyQuery is importCopyQuery but for its
// NOT IN list, which the copy of each batch puts in place of
// importExceptMark.
func importStatements(dialect dbutil.Dialect, sender string) (read, copyQuery string) {
	return importStatementsJoined(dialect == dbutil.SQLite, sender)
}

// importStatementsJoined is importStatements in the join form (SQLite's) or
// the subquery form (PostgreSQL's); both databases run either.
func importStatementsJoined(joined bool, sender string) (read, copyQuery string) {
	source := importSubquerySource
	tokenNewer := fmt.Sprintf(importTokenNewer, sender, importPairedLID)
	senderNewer := fmt.Sprintf(importSenderNewer, sender, importPairedLID)
	if joined {
		source = importJoinSource
		tokenNewer = importJoinTokenNewer
		senderNewer = fmt.Sprintf(importJoinSenderNewer, sender)
	}
	read = fmt.Sprintf(importBatchQuery, sender, source, tokenNewer, senderNewer)
	copyQuery = fmt.Sprintf(importCopyQuery, sender, source, tokenNewer, senderNewer, importExceptMark)
	return read, copyQuery
}

// WhatsmeowToken is one row of whatsmeow's token table that holds more than
// the plugin's rows: a token, a sender timestamp, or both. Nothing in it has
// been checked; Contact is whatsmeow's key as stored.
type WhatsmeowToken struct {
	Contact  string
	Token    []byte
	TokenTS  int64
	SenderTS int64
	// TokenNewer: the token is valid at the cutoff and newer than the
	// plugin's; otherwise only the sender timestamp is.
	TokenNewer bool
}

// ImportBatch is one key range of whatsmeow's rows, as ImportWhatsmeowTokens
// hands it to its writer.
type ImportBatch struct {
	// Rows are the range's rows that hold more than the plugin's rows.
	Rows []WhatsmeowToken
	copy func(ctx context.Context, check TokenChecks, except []string) error
}

// TokenChecks are the limits a token's shape must keep, as the plugin
// checks them: the latest timestamp allowed, and the longest token.
type TokenChecks struct {
	LatestTS int64
	MaxSize  int
}

// Copyable reports whether Copy can write the batch: a batch built
// elsewhere (a row a read found in whatsmeow's store) has no range to copy.
func (b ImportBatch) Copyable() bool { return b.copy != nil }

// Copy writes the batch's rows database-side, as PutTokens would (without
// reporting which changed a row), but for those whose contact is in except:
// the rows the caller refused, or writes itself under another key.
func (b ImportBatch) Copy(ctx context.Context, check TokenChecks, except ...string) error {
	return b.copy(ctx, check, except)
}

// ImportResult is what one pass over whatsmeow's token table did.
type ImportResult struct {
	// Rows is how many of whatsmeow's rows held more than the plugin's and
	// were handed to the batch writer.
	Rows int64
	// Batches is how many key ranges were read.
	Batches int
}

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

// SeesWhatsmeow reports whether the plugin's database holds whatsmeow's
// token table for this account: the table, and our device in whatsmeow's
// device table beside it. A database of the plugin's own holds neither.
func (s *Store) SeesWhatsmeow(ctx context.Context) (bool, error) {
	for _, table := range []string{WhatsmeowTokensTable, whatsmeowDevicesTable} {
		exists, err := TableVisible(ctx, s.db, table)
		if err != nil {
			return false, fmt.Errorf("tctoken: failed to look for whatsmeow's tables for %s: %w", s.ourJID, err)
		} else if !exists {
			return false, nil
		}
	}
	var one int
	err := s.db.QueryRow(ctx, getWhatsmeowDeviceQuery, s.ourJID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("tctoken: failed to look for the device %s in %s: %w", s.ourJID, whatsmeowDevicesTable, err)
	}
	return true, nil
}

// ImportWhatsmeowTokens goes over this account's rows in whatsmeow's own
// token table, in key ranges of ImportBatchSize, and hands write the rows
// that hold more than the plugin's (see importBatchQuery), one batch at a
// time; then it records that the pass ran. write checks and stores them
// (the store has no say in what a valid token is). Tokens expired at
// recvCutoff are not handed over unless their sender timestamp is newer.
//
// Reading a batch takes no lock a send waits on; write does, on SQLite, for
// as long as it writes. So on SQLite a batch writes no sooner than as long
// after the last write ended as that write took (as Prune pauses, and for
// the same reason: a send waiting in SQLite's busy handler retries in that
// gap; a prune's statements are short, and it pauses three times as long,
// but a write of 2,000 rows is long enough that three times its time,
// after every batch, would stretch the first import of a large table
// several times over). The next batch is read in that gap, which takes no
// write lock: the gap is what the waiting send needs, and the pass need not
// sit idle through it. A batch with nothing to write goes on at once.
//
// A database that does not hold whatsmeow's table for the account (see
// SeesWhatsmeow) returns ErrWhatsmeowNotVisible and records nothing.
func (s *Store) ImportWhatsmeowTokens(ctx context.Context, recvCutoff int64, write func(ctx context.Context, batch ImportBatch) error) (ImportResult, error) {
	var result ImportResult
	recvCutoff = max(recvCutoff, 0)
	if visible, err := s.SeesWhatsmeow(ctx); err != nil {
		return result, err
	} else if !visible {
		return result, fmt.Errorf("%w (account %s)", ErrWhatsmeowNotVisible, s.ourJID)
	}
	sender := importNoSender
	if shape, err := s.whatsmeowTableShape(ctx); err != nil {
		return result, fmt.Errorf("tctoken: failed to inspect %s while importing for %s: %w", WhatsmeowTokensTable, s.ourJID, err)
	} else if shape == whatsmeowShapeSender {
		sender = importSenderColumn
	}
	query, copyQuery := importStatements(s.db.Dialect, sender)
	after := ""
	// On SQLite, when the next write may start (see importTurn).
	var turn time.Time
	for {
		var rows []WhatsmeowToken
		var upper sql.NullString
		err := s.importReadTxn(ctx, func(ctx context.Context) (err error) {
			if err = s.db.QueryRow(ctx, importBoundQuery, s.ourJID, after, ImportBatchSize).Scan(&upper); err != nil {
				return fmt.Errorf("page after %q: %w", after, err)
			} else if !upper.Valid {
				return nil
			}
			if rows, err = s.readImportBatch(ctx, query, after, upper.String, recvCutoff); err != nil {
				return fmt.Errorf("read (%q, %q]: %w", after, upper.String, err)
			}
			return nil
		})
		if err != nil {
			return result, fmt.Errorf("tctoken: failed to read whatsmeow's tokens of %s: %w", s.ourJID, err)
		} else if !upper.Valid {
			break
		}
		result.Batches++
		if len(rows) > 0 {
			if err := waitUntil(ctx, turn); err != nil {
				return result, fmt.Errorf("tctoken: import for %s interrupted: %w", s.ourJID, err)
			}
			writeStart := time.Now()
			lower, high := after, upper.String
			batch := ImportBatch{Rows: rows, copy: func(ctx context.Context, check TokenChecks, except []string) error {
				return s.copyImportBatch(ctx, copyQuery, lower, high, recvCutoff, check, except)
			}}
			if err := write(ctx, batch); err != nil {
				return result, fmt.Errorf("tctoken: failed to import whatsmeow's tokens of %s in (%q, %q]: %w", s.ourJID, after, upper.String, err)
			}
			result.Rows += int64(len(rows))
			if turn, err = s.importTurn(ctx, time.Since(writeStart)); err != nil {
				return result, fmt.Errorf("tctoken: import for %s: %w", s.ourJID, err)
			}
		}
		after = upper.String
	}
	// The record is a write too.
	if err := waitUntil(ctx, turn); err != nil {
		return result, fmt.Errorf("tctoken: import for %s interrupted: %w", s.ourJID, err)
	}
	if _, err := s.db.Exec(ctx, putImportQuery, s.ourJID, s.now(), result.Rows); err != nil {
		return result, fmt.Errorf("tctoken: failed to record the import for %s: %w", s.ourJID, err)
	}
	return result, nil
}

// copyImportBatch runs the pass's copy (importStatements) on the key range
// (lower, upper], in the transaction ctx holds (the batch writer's).
func (s *Store) copyImportBatch(ctx context.Context, query, lower, upper string, recvCutoff int64, check TokenChecks, except []string) error {
	args := []any{s.ourJID, lower, upper, recvCutoff, check.LatestTS, check.MaxSize, s.now()}
	notIn := ""
	if len(except) > 0 {
		marks := make([]string, len(except))
		for i, key := range except {
			args = append(args, key)
			marks[i] = fmt.Sprintf("$%d", len(args))
		}
		notIn = " AND w.their_jid NOT IN (" + strings.Join(marks, ", ") + ")"
	}
	if s.db.Dialect == dbutil.Postgres {
		// In the writer's transaction: pinned for the rest of it, as the
		// reads are (see importPlanSettings).
		if _, err := s.db.Exec(ctx, importPlanSettings); err != nil {
			return fmt.Errorf("planner settings: %w", err)
		}
	}
	if _, err := s.db.Exec(ctx, strings.Replace(query, importExceptMark, notIn, 1), args...); err != nil {
		return fmt.Errorf("copy (%q, %q]: %w", lower, upper, err)
	}
	return nil
}

// readImportBatch reads one key range of whatsmeow's rows (see
// importBatchQuery).
func (s *Store) readImportBatch(ctx context.Context, query, after, upper string, recvCutoff int64) ([]WhatsmeowToken, error) {
	rows, err := s.db.Query(ctx, query, s.ourJID, after, upper, recvCutoff)
	if err != nil {
		return nil, err
	}
	return dbutil.ConvertRowFn[WhatsmeowToken](scanWhatsmeowToken).NewRowIter(rows, nil).AsList()
}

func scanWhatsmeowToken(row dbutil.Scannable) (WhatsmeowToken, error) {
	var token WhatsmeowToken
	err := row.Scan(&token.Contact, &token.Token, &token.TokenTS, &token.SenderTS, &token.TokenNewer)
	return token, err
}

// importPlanSettings pins, for one batch's read transaction on PostgreSQL,
// the plan that reads whatsmeow's key range and the plugin's rows by index.
// Right after a bridge filled them (a history sync, the first import),
// before autovacuum has analysed the tables, the planner guessed a few rows
// per account, and read and sorted every key past the batch's lower bound
// to find its upper one, for every batch.
const importPlanSettings = `SELECT set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true),
	set_config('enable_sort', 'off', true)`

// importReadTxn runs one batch's reads: on PostgreSQL in a transaction
// that pins their plan (see importPlanSettings), on SQLite as they are.
func (s *Store) importReadTxn(ctx context.Context, fn func(ctx context.Context) error) error {
	if s.db.Dialect != dbutil.Postgres {
		return fn(ctx)
	}
	return s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		if _, err := s.db.Exec(ctx, importPlanSettings); err != nil {
			return fmt.Errorf("planner settings: %w", err)
		}
		return fn(ctx)
	})
}

// minBatchPause is the shortest pause after a batch that wrote, on SQLite.
const minBatchPause = 2 * time.Millisecond

// importTurn is when the pass's next write may start after a write that
// took wrote: on SQLite as long after it as it took (see batchTurn); at
// once elsewhere. Only a write on SQLite holds a lock a send waits on. On
// PostgreSQL a pause as long as the batch did not shorten the longest send
// during a pass over a million rows: it only doubled the pass (README,
// Performance).
func (s *Store) importTurn(ctx context.Context, wrote time.Duration) (time.Time, error) {
	if s.db.Dialect != dbutil.SQLite {
		return time.Time{}, nil
	}
	return s.batchTurn(ctx, wrote, 1)
}

// batchTurn is when long work (a prune, the import) may write again on
// SQLite after a batch that held the write lock for wrote: factor times
// that after the batch ended (at least minBatchPause), so that a send
// waiting in SQLite's busy handler gets the lock. It checkpoints the WAL
// first (see checkpoint).
func (s *Store) batchTurn(ctx context.Context, wrote time.Duration, factor int) (time.Time, error) {
	end := time.Now()
	if err := s.checkpoint(ctx); err != nil {
		return time.Time{}, err
	}
	return end.Add(max(time.Duration(factor)*wrote, minBatchPause)), nil
}

// waitUntil waits until t, or until ctx is done.
func waitUntil(ctx context.Context, t time.Time) error {
	wait := time.Until(t)
	if wait <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// checkpoint checkpoints SQLite's WAL, where that costs long work rather
// than the next send's commit: left to SQLite's auto-checkpoint, the commit
// that crosses 1,000 pages copies them, and that is as often a send's
// session write (a passive checkpoint takes no write lock).
func (s *Store) checkpoint(ctx context.Context) error {
	if _, err := s.db.Exec(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// pauseBetweenBatches waits between two batches of a prune: on SQLite, after
// a batch that held the write lock for wrote, until its turn (batchTurn,
// factor times that); elsewhere for wait.
func (s *Store) pauseBetweenBatches(ctx context.Context, wait, wrote time.Duration, factor int) error {
	turn := time.Now().Add(wait)
	if wrote > 0 && s.db.Dialect == dbutil.SQLite {
		var err error
		if turn, err = s.batchTurn(ctx, wrote, factor); err != nil {
			return err
		}
	}
	return waitUntil(ctx, turn)
}
