package sqlstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
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
