package sqlstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"
)

// Sharing a database with whatsmeow's store. A bridge usually keeps the
// plugin's tables beside whatsmeow's, on one connection pool (mautrix
// bridges hand whatsmeow a child of their own database). Then the plugin's
// write and its write-through to whatsmeow's table can commit together, and
// a cold read can follow whatsmeow's LID map in the same statement. Whether
// that holds is not visible through whatsmeow's interfaces, so the plugin
// asks: SharesTransactions.

// ProbeContact is the contact of the row SharesTransactions writes and
// rolls back: a server no real contact has.
var ProbeContact = types.NewJID("tctoken-probe", "tctoken.invalid")

// probeReadTimeout bounds the probe's read through the other store: one
// that waits for a connection the probe holds (a pool of one) is not
// sharing it.
const probeReadTimeout = 2 * time.Second

const probeWhatsmeowTokenQuery = `
	INSERT INTO whatsmeow_privacy_tokens (our_jid, their_jid, token, timestamp) VALUES ($1, $2, $3, 0)
`

var errProbeDone = errors.New("tctoken: probe done, rolling back")

// ErrProbeInTransaction is SharesTransactions' answer inside a transaction
// already running: the probe's rollback would not be its own, and the
// transaction's commit would keep the probe row. Ask again outside.
var ErrProbeInTransaction = errors.New("tctoken: cannot probe inside a running transaction")

// InTransaction reports whether ctx carries a transaction of the plugin's
// database (or of one sharing its transactions, such as whatsmeow's).
func (s *Store) InTransaction(ctx context.Context) bool {
	_, ok := s.db.Execable(ctx).(dbutil.Transaction)
	return ok
}

// InTxn runs fn in one transaction of the plugin's database. Statements
// that fn runs with the context it is given join it: the plugin's own, and
// those of another store on the same dbutil database (see
// SharesTransactions). A transaction already in ctx is joined too.
func (s *Store) InTxn(ctx context.Context, fn func(ctx context.Context) error) error {
	return s.db.DoTxn(ctx, nil, fn)
}

// SharesTransactions reports whether another store's reads (read asks it
// for the token of ProbeContact) see this store's uncommitted writes, that
// is, whether that store runs its statements in the transaction InTxn puts
// in the context. It writes a row for ProbeContact into whatsmeow's token
// table inside a transaction, reads it through the other store, and rolls
// back: nothing is ever committed. A store on another database, another
// pool, or a pool that never joins sees nothing, and the answer is false.
func (s *Store) SharesTransactions(ctx context.Context, read func(ctx context.Context, contact types.JID) ([]byte, error)) (bool, error) {
	if s.InTransaction(ctx) {
		return false, ErrProbeInTransaction
	}
	marker := make([]byte, 16)
	_, _ = rand.Read(marker)
	shared := false
	err := s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		if _, err := s.db.Exec(ctx, probeWhatsmeowTokenQuery, s.ourJID, ProbeContact.String(), marker); err != nil {
			return fmt.Errorf("tctoken: write the probe row into %s for %s: %w", WhatsmeowTokensTable, s.ourJID, err)
		}
		readCtx, cancel := context.WithTimeout(ctx, probeReadTimeout)
		defer cancel()
		got, err := read(readCtx, ProbeContact)
		shared = err == nil && bytes.Equal(got, marker)
		return errProbeDone
	})
	if errors.Is(err, errProbeDone) {
		return shared, nil
	}
	return false, err
}

// getEntriesByLIDQuery reads the rows of a contact under its LID ($2) and
// under the phone number whatsmeow's LID map pairs with it ($3 is the LID's
// user part), and names that phone number, in one statement. The one-row
// derived table makes a row come back even when nothing is stored, so the
// mapping is always learnt. whatsmeow's own token read follows the map the
// same way.
const getEntriesByLIDQuery = `
	SELECT m.pn, t.their_jid, t.token, t.token_ts, t.sender_ts
	FROM (SELECT (SELECT pn FROM whatsmeow_lid_map WHERE lid=$3) AS pn) m
	LEFT JOIN tctoken_tokens t ON t.our_jid=$1 AND t.their_jid IN ($2, m.pn || '@s.whatsapp.net')
`

// GetByLID reads the rows of a contact under its LID and under the phone
// number whatsmeow's LID map (in the same database) pairs with it, and
// returns that phone number (empty if none): one round trip where resolving
// the phone number first would take two, and nothing added to whatsmeow's
// in-memory LID cache, which never evicts. Only for a database that holds
// whatsmeow's tables (see SharesTransactions).
func (s *Store) GetByLID(ctx context.Context, lid types.JID) (pn types.JID, entries []*Entry, err error) {
	lid = lid.ToNonAD()
	rows, err := s.db.Query(ctx, getEntriesByLIDQuery, s.ourJIDArg, lid.String(), lid.User)
	if err == nil {
		pn, entries, err = scanEntriesByLID(rows)
	}
	if err != nil {
		return types.EmptyJID, nil, fmt.Errorf("tctoken: failed to get token of %s and its phone number: %w", lid, err)
	}
	return pn, entries, nil
}

// scanEntriesByLID scans GetByLID's rows itself, as GetMany does: it is the
// cold read of every send to a LID.
func scanEntriesByLID(rows dbutil.Rows) (pn types.JID, entries []*Entry, err error) {
	defer func() {
		if closeErr := rows.Close(); err == nil {
			err = closeErr
		}
	}()
	for rows.Next() {
		// One allocation for the entry and its scan targets, which escape
		// through Scan anyway.
		scan := &struct {
			entry             Entry
			pn, contact       sql.NullString
			tokenTS, senderTS sql.NullInt64
		}{}
		if err = rows.Scan(&scan.pn, &scan.contact, &scan.entry.Token, &scan.tokenTS, &scan.senderTS); err != nil {
			return types.EmptyJID, nil, err
		}
		if scan.pn.Valid && scan.pn.String != "" {
			pn = types.NewJID(scan.pn.String, types.DefaultUserServer)
		}
		if !scan.contact.Valid {
			continue // nothing stored: the row only names the phone number
		}
		jid, err := types.ParseJID(scan.contact.String)
		if err != nil {
			return types.EmptyJID, nil, fmt.Errorf("invalid contact %q in database: %w", scan.contact.String, err)
		}
		scan.entry.Contact = jid
		scan.entry.TokenTS = scan.tokenTS.Int64
		scan.entry.SenderTS = scan.senderTS.Int64
		entries = append(entries, &scan.entry)
	}
	return pn, entries, rows.Err()
}

// getLIDsForPNsQuery reads the LIDs whatsmeow's LID map pairs with phone
// numbers (user parts), for a batch of tokens keyed by phone number; the
// IN list is filled in with one placeholder per number. On PostgreSQL
// getLIDsForPNsPostgres takes them as one array, and on SQLite
// getLIDsForPNsJSON as one JSON array (see rowsAsJSON): a statement whose
// text is the same for every batch, which SQLite prepares in microseconds,
// where a thousand placeholders took longer to prepare than to run.
//
// The held form also says, for each number, whether the plugin's table
// holds a row under it (a history blob mends only those, see LIDsForPNs);
// it names every number asked for, mapped or not. One text serves the three
// row sources (%[1]s and %[2]s; %[3]s is our JID's placeholder). Both
// lookups are scalar subqueries, one key each: written as EXISTS and a
// join, PostgreSQL planned a table just filled (no statistics yet) as a
// hash of all of the account's rows, every row read for every blob.
const (
	getLIDsForPNsQuery    = `SELECT pn, lid FROM whatsmeow_lid_map WHERE pn IN (%s)`
	getLIDsForPNsPostgres = `SELECT pn, lid FROM whatsmeow_lid_map WHERE pn = ANY($1::text[])`
	getLIDsForPNsJSON     = `SELECT pn, lid FROM whatsmeow_lid_map WHERE pn IN (SELECT value FROM json_each(?1))`
	getLIDsForPNsHeld     = `%[1]s
		SELECT u.pn, (SELECT m.lid FROM whatsmeow_lid_map m WHERE m.pn=u.pn),
			(SELECT 1 FROM tctoken_tokens t WHERE t.our_jid=%[3]s AND t.their_jid=u.pn || '@s.whatsapp.net') IS NOT NULL
		FROM %[2]s
	`
)

var (
	getLIDsForPNsHeldPG   = fmt.Sprintf(getLIDsForPNsHeld, "", "unnest($1::text[]) AS u(pn)", "$2")
	getLIDsForPNsHeldJSON = fmt.Sprintf(getLIDsForPNsHeld, "", "(SELECT value AS pn FROM json_each(?1)) AS u", "?2")
	// The VALUES list (%s) is filled in per batch.
	getLIDsForPNsHeldQuery = fmt.Sprintf(getLIDsForPNsHeld, "WITH u(pn) AS (%s)", "u", "$1")
)

// LIDsForPNs returns the LIDs whatsmeow's LID map (in the same database)
// pairs with phone numbers, keyed by the numbers without their device;
// numbers without one are missing from the map. It reads the table in one
// statement per putTokensChunk numbers and adds nothing to whatsmeow's
// in-memory LID cache, which never evicts: whatsmeow's own batch lookup
// kept every answer there, a million of them after an ingest of a million
// tokens. Only for a database that holds whatsmeow's tables (see
// SharesTransactions).
//
// When held is not nil, the same statement also records in it, for each
// number, whether the plugin's table held a row under the number as the
// statement read it (true) or not (false).
func (s *Store) LIDsForPNs(ctx context.Context, pns []types.JID, held map[types.JID]bool) (map[types.JID]types.JID, error) {
	lids := make(map[types.JID]types.JID, len(pns))
	users := make([]string, 0, len(pns))
	for _, pn := range pns {
		if pn.Server == types.DefaultUserServer {
			users = append(users, pn.User)
		}
	}
	asJSON := s.rowsAsJSON(ctx)
	for start := 0; start < len(users); start += putTokensChunk {
		chunk := users[start:min(start+putTokensChunk, len(users))]
		var rows dbutil.Rows
		var err error
		switch {
		case s.db.Dialect == dbutil.Postgres && held != nil:
			rows, err = s.queryPrepared(ctx, getLIDsForPNsHeldPG, pgTextArray(chunk), s.ourJID)
		case s.db.Dialect == dbutil.Postgres:
			rows, err = s.queryPrepared(ctx, getLIDsForPNsPostgres, pgTextArray(chunk))
		case asJSON && held != nil:
			rows, err = s.queryPrepared(ctx, getLIDsForPNsHeldJSON, jsonStrings(chunk), s.ourJID)
		case asJSON:
			rows, err = s.queryPrepared(ctx, getLIDsForPNsJSON, jsonStrings(chunk))
		default:
			args := make([]any, len(chunk), len(chunk)+1)
			for i, user := range chunk {
				args[i] = user
			}
			if held != nil {
				args = append([]any{s.ourJID}, args...)
				rows, err = s.db.Query(ctx, fmt.Sprintf(getLIDsForPNsHeldQuery, "VALUES "+s.tuplesOf(len(chunk), 2)), args...)
			} else {
				rows, err = s.db.Query(ctx, fmt.Sprintf(getLIDsForPNsQuery, s.placeholders(len(chunk))), args...)
			}
		}
		if err == nil {
			err = scanLIDs(rows, lids, held)
		}
		if err != nil {
			return nil, fmt.Errorf("tctoken: failed to look up the LIDs of %d phone number(s) (first %s) in %s: %w",
				len(chunk), chunk[0], WhatsmeowLIDMapTable, err)
		}
	}
	return lids, nil
}

// tuplesOf is a VALUES body of count one-column tuples, ($first), ...,
// in the dialect's own syntax (see tuples).
func (s *Store) tuplesOf(count, first int) string {
	mark := s.mark()
	b := make([]byte, 0, count*9)
	for i := range count {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, '(', mark)
		b = strconv.AppendInt(b, int64(first+i), 10)
		b = append(b, ')')
	}
	return string(b)
}

// placeholders is a list of n placeholders from $1 on, in the dialect's
// own syntax (see tuples).
func (s *Store) placeholders(n int) string {
	mark := s.mark()
	b := make([]byte, 0, n*7)
	for i := range n {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, mark)
		b = strconv.AppendInt(b, int64(i+1), 10)
	}
	return string(b)
}

// scanLIDs reads (pn, lid) rows, or (pn, lid or NULL, held) rows when held
// is not nil.
func scanLIDs(rows dbutil.Rows, lids map[types.JID]types.JID, held map[types.JID]bool) (err error) {
	defer func() {
		if closeErr := rows.Close(); err == nil {
			err = closeErr
		}
	}()
	for rows.Next() {
		var pn string
		var lid sql.NullString
		var holds bool
		if held != nil {
			err = rows.Scan(&pn, &lid, &holds)
		} else {
			err = rows.Scan(&pn, &lid)
		}
		if err != nil {
			return err
		}
		jid := types.NewJID(pn, types.DefaultUserServer)
		if lid.Valid && lid.String != "" {
			lids[jid] = types.NewJID(lid.String, types.HiddenUserServer)
		}
		if held != nil {
			held[jid] = holds
		}
	}
	return rows.Err()
}

// The write-through in whatsmeow's own words. Inside a joined transaction
// the plugin writes whatsmeow's token table with the statement whatsmeow's
// SQL store itself runs (store/sqlstore/store.go, putPrivacyTokens), for the
// table whatsmeow 2025-12 has or for the newer one with sender_timestamp,
// but with the rows as arrays on PostgreSQL and in SQLite's own placeholders:
// whatsmeow's multi-row VALUES list cost more than the plugin's own write of
// the same thousand rows. Any other table is left to whatsmeow's store.
const (
	whatsmeowShapeUnknown int32 = iota
	whatsmeowShape202512        // our_jid, their_jid, token, timestamp
	whatsmeowShapeSender        // and sender_timestamp (whatsmeow 33cfac51)
)

const (
	// whatsmeow 2025-12: the newest write wins.
	putWhatsmeowTokensQuery = `
		INSERT INTO whatsmeow_privacy_tokens (our_jid, their_jid, token, timestamp)
		%s
		ON CONFLICT (our_jid, their_jid) DO UPDATE SET token=excluded.token, timestamp=excluded.timestamp
	`
	// whatsmeow 33cfac51: never older, and the sender timestamp (none here)
	// kept.
	putWhatsmeowTokensSenderQuery = `
		INSERT INTO whatsmeow_privacy_tokens (our_jid, their_jid, token, timestamp, sender_timestamp)
		%s
		ON CONFLICT (our_jid, their_jid) DO UPDATE SET
			token=excluded.token,
			timestamp=excluded.timestamp,
			sender_timestamp=COALESCE(excluded.sender_timestamp, whatsmeow_privacy_tokens.sender_timestamp)
		WHERE excluded.timestamp >= whatsmeow_privacy_tokens.timestamp
	`
	// The same with the rows as one JSON parameter on SQLite (see
	// jsonrows.go): [contact, token in hex, timestamp].
	jsonWhatsmeowTokensSource = `
		SELECT ?1, u.value->>0, unhex(u.value->>1), u.value->>2%s
		FROM json_each(?2) AS u WHERE true
	`
	unnestWhatsmeowTokensSource = `
		SELECT $1, u.their_jid, decode(u.token, 'hex'), u.token_ts%s
		FROM unnest($2::text[], $3::text[], $4::bigint[]) AS u(their_jid, token, token_ts)
	`
)

// whatsmeowStatements[shape][rows] is the write-through for whatsmeow's
// table of that shape, with the rows as arrays or as JSON: the same text
// for every batch (see prepared.go).
var whatsmeowStatements = map[int32][2]string{
	whatsmeowShape202512: {
		fmt.Sprintf(putWhatsmeowTokensQuery, fmt.Sprintf(unnestWhatsmeowTokensSource, "")),
		fmt.Sprintf(putWhatsmeowTokensQuery, fmt.Sprintf(jsonWhatsmeowTokensSource, "")),
	},
	whatsmeowShapeSender: {
		fmt.Sprintf(putWhatsmeowTokensSenderQuery, fmt.Sprintf(unnestWhatsmeowTokensSource, whatsmeowNoSender)),
		fmt.Sprintf(putWhatsmeowTokensSenderQuery, fmt.Sprintf(jsonWhatsmeowTokensSource, whatsmeowNoSender)),
	},
}

// whatsmeowNoSender is the sender timestamp column of the write-through:
// none (whatsmeow keeps what it has).
const whatsmeowNoSender = ", CAST(NULL AS BIGINT)"

// whatsmeowTableShape says which of whatsmeow's token tables the database
// holds, asking once.
func (s *Store) whatsmeowTableShape(ctx context.Context) (int32, error) {
	if shape := s.c.whatsmeowShape.Load(); shape != whatsmeowShapeUnknown {
		return shape, nil
	}
	hasSender, err := ColumnVisible(ctx, s.db, WhatsmeowTokensTable, "sender_timestamp")
	if err != nil {
		return whatsmeowShapeUnknown, fmt.Errorf("tctoken: failed to tell the shape of whatsmeow's token table: %w", err)
	}
	shape := whatsmeowShape202512
	if hasSender {
		shape = whatsmeowShapeSender
	}
	s.c.whatsmeowShape.Store(shape)
	return shape, nil
}

// PutWhatsmeowTokens writes tokens into whatsmeow's own token table of this
// account as whatsmeow's SQL store would, in one statement. Only for a
// database that holds whatsmeow's tables (see SharesTransactions); the
// caller has already settled one write per contact.
func (s *Store) PutWhatsmeowTokens(ctx context.Context, writes ...TokenWrite) error {
	if len(writes) == 0 {
		return nil
	}
	shape, err := s.whatsmeowTableShape(ctx)
	if err != nil {
		return err
	}
	query, sender := putWhatsmeowTokensQuery, ""
	if shape == whatsmeowShapeSender {
		query, sender = putWhatsmeowTokensSenderQuery, whatsmeowNoSender
	}
	asJSON := s.rowsAsJSON(ctx)
	for start := 0; start < len(writes); start += putTokensChunk {
		chunk := writes[start:min(start+putTokensChunk, len(writes))]
		var args []any
		if s.db.Dialect == dbutil.Postgres {
			keys, tokens, stamps := make([]string, len(chunk)), make([][]byte, len(chunk)), make([]int64, len(chunk))
			for i, w := range chunk {
				keys[i], tokens[i], stamps[i] = contactKey(w.Contact), w.Token, w.TokenTS
			}
			args = []any{s.ourJID, pgTextArray(keys), pgHexArray(tokens), pgInt64Array(stamps)}
			_, err = s.execPrepared(ctx, whatsmeowStatements[shape][rowsArrays], args...)
		} else if asJSON {
			rows := newJSONRows(len(chunk))
			for _, w := range chunk {
				rows.row()
				rows.str(contactKey(w.Contact))
				rows.hex(w.Token)
				rows.int(w.TokenTS)
				rows.end()
			}
			_, err = s.execPrepared(ctx, whatsmeowStatements[shape][rowsJSON], s.ourJID, rows.secretText())
		} else {
			args = make([]any, 1, 1+3*len(chunk))
			args[0] = s.ourJID
			for _, w := range chunk {
				args = append(args, contactKey(w.Contact), secret(w.Token), w.TokenTS)
			}
			_, err = s.db.Exec(ctx, fmt.Sprintf(query, "VALUES "+s.tuples(len(chunk), 3, 2, sender)), args...)
		}
		if err != nil {
			keys := make([]string, len(chunk))
			for i, w := range chunk {
				keys[i] = contactKey(w.Contact)
			}
			return fmt.Errorf("tctoken: failed to write the tokens from %s into %s for %s: %w", nameContacts(keys), WhatsmeowTokensTable, s.ourJID, err)
		}
	}
	return nil
}
