package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"
)

// WhatsmeowLIDMapTable is whatsmeow's PN <-> LID map (user parts only).
const WhatsmeowLIDMapTable = "whatsmeow_lid_map"

const (
	// Every account that left a trace in any of the plugin's tables.
	listAccountsQuery = `
		SELECT our_jid FROM tctoken_tokens
		UNION SELECT our_jid FROM tctoken_nct_salt
		UNION SELECT our_jid FROM tctoken_ab_props_meta
		UNION SELECT our_jid FROM tctoken_imports
		UNION SELECT our_jid FROM tctoken_timelock
		UNION SELECT our_jid FROM tctoken_salt_backfill
		UNION SELECT our_jid FROM tctoken_new_chat_cap
		ORDER BY our_jid
	`
	listEntriesQuery = `
		SELECT their_jid, token, token_ts, sender_ts FROM tctoken_tokens WHERE our_jid=$1 ORDER BY their_jid
	`
	getSaltUpdatedQuery = `SELECT updated_at FROM tctoken_nct_salt WHERE our_jid=$1`
	lidForPNQuery       = `SELECT lid FROM whatsmeow_lid_map WHERE pn=$1`
	pnForLIDQuery       = `SELECT pn FROM whatsmeow_lid_map WHERE lid=$1`
)

// Accounts lists every account the plugin's tables hold anything for.
func (c *Container) Accounts(ctx context.Context) ([]types.JID, error) {
	accounts, err := dbutil.ConvertRowFn[types.JID](scanContact).NewRowIter(c.db.Query(ctx, listAccountsQuery)).AsList()
	if err != nil {
		return nil, fmt.Errorf("tctoken: failed to list accounts: %w", err)
	}
	return accounts, nil
}

// Entries returns every row of this account, ordered by contact: the
// inspector's listing.
func (s *Store) Entries(ctx context.Context) ([]*Entry, error) {
	entries, err := dbutil.ConvertRowFn[*Entry](scanEntry).NewRowIter(s.db.Query(ctx, listEntriesQuery, s.ourJID)).AsList()
	if err != nil {
		return nil, fmt.Errorf("tctoken: failed to list the tokens of %s: %w", s.ourJID, err)
	}
	return entries, nil
}

// ImportStatus returns when whatsmeow's own tokens were imported and how
// many rows were read; found is false when no import ran yet.
func (s *Store) ImportStatus(ctx context.Context) (at, rows int64, found bool, err error) {
	err = s.db.QueryRow(ctx, getImportQuery, s.ourJID).Scan(&at, &rows)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, false, nil
	} else if err != nil {
		return 0, 0, false, fmt.Errorf("tctoken: failed to read the import status of %s: %w", s.ourJID, err)
	}
	return at, rows, true, nil
}

// SaltUpdatedAt returns when the salt row last changed (unix seconds), 0
// when there is none.
func (s *Store) SaltUpdatedAt(ctx context.Context) (int64, error) {
	var at int64
	err := s.db.QueryRow(ctx, getSaltUpdatedQuery, s.ourJID).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("tctoken: failed to read the NCT salt's age of %s: %w", s.ourJID, err)
	}
	return at, nil
}

// ResolveStored maps a contact to its LID and PN through whatsmeow's LID
// map as stored in this database, for a reader that has no whatsmeow client
// (the inspector). Either may be empty; a database without whatsmeow's
// table maps nothing.
func (c *Container) ResolveStored(ctx context.Context, jid types.JID) (lid, pn types.JID, err error) {
	jid = jid.ToNonAD()
	switch jid.Server {
	case types.HiddenUserServer:
		lid = jid
	case types.DefaultUserServer:
		pn = jid
	default:
		return lid, pn, nil
	}
	exists, err := TableVisible(ctx, c.db, WhatsmeowLIDMapTable)
	if err != nil {
		return lid, pn, fmt.Errorf("tctoken: failed to resolve %s: %w", jid, err)
	} else if !exists {
		return lid, pn, nil
	}
	var other string
	if lid.IsEmpty() {
		err = c.db.QueryRow(ctx, lidForPNQuery, pn.User).Scan(&other)
	} else {
		err = c.db.QueryRow(ctx, pnForLIDQuery, lid.User).Scan(&other)
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return lid, pn, nil
	case err != nil:
		return lid, pn, fmt.Errorf("tctoken: failed to map %s through %s: %w", jid, WhatsmeowLIDMapTable, err)
	case lid.IsEmpty():
		lid = types.NewJID(other, types.HiddenUserServer)
	default:
		pn = types.NewJID(other, types.DefaultUserServer)
	}
	return lid, pn, nil
}
