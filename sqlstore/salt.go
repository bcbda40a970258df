package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// SaltSource says where the stored NCT salt came from.
type SaltSource string

const (
	// SaltFromAppState is the authoritative source: the nct_salt_sync
	// mutation of the regular_high app state collection.
	SaltFromAppState SaltSource = "app_state"
	// SaltFromHistorySync is a backfill from a history sync blob, used only
	// until app state says otherwise.
	SaltFromHistorySync SaltSource = "history_sync"
)

const (
	getSaltQuery = `SELECT salt, source FROM tctoken_nct_salt WHERE our_jid=$1`
	// App state wins over anything stored, including its own earlier removal.
	putAppStateSaltQuery = `
		INSERT INTO tctoken_nct_salt (our_jid, salt, source, updated_at) VALUES ($1, $2, 'app_state', $3)
		ON CONFLICT (our_jid) DO UPDATE SET salt=excluded.salt, source=excluded.source, updated_at=excluded.updated_at
	`
	// The removal is kept as a row with a NULL salt rather than deleted, so
	// that a history sync processed afterwards cannot bring the salt back.
	removeAppStateSaltQuery = `
		INSERT INTO tctoken_nct_salt (our_jid, salt, source, updated_at) VALUES ($1, NULL, 'app_state', $2)
		ON CONFLICT (our_jid) DO UPDATE SET salt=NULL, source=excluded.source, updated_at=excluded.updated_at
	`
	// A history sync only fills a gap. DO NOTHING makes the "no row at all"
	// check and the write one atomic step, so an app-state write racing with
	// it always wins.
	putHistorySaltQuery = `
		INSERT INTO tctoken_nct_salt (our_jid, salt, source, updated_at) VALUES ($1, $2, 'history_sync', $3)
		ON CONFLICT (our_jid) DO NOTHING
	`
)

// GetSalt returns the stored NCT salt and its source. found is false when
// nothing was ever stored; found with a nil salt means app state removed it.
func (s *Store) GetSalt(ctx context.Context) (salt []byte, source SaltSource, found bool, err error) {
	err = s.db.QueryRow(ctx, getSaltQuery, s.ourJID).Scan(&salt, &source)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", false, nil
	} else if err != nil {
		return nil, "", false, fmt.Errorf("tctoken: failed to get NCT salt of %s: %w", s.ourJID, err)
	}
	return salt, source, true, nil
}

// SetAppStateSalt stores the salt from an app state SET mutation, replacing
// whatever was stored.
func (s *Store) SetAppStateSalt(ctx context.Context, salt []byte) error {
	if len(salt) == 0 {
		return fmt.Errorf("tctoken: refusing to store an empty NCT salt from app state for %s", s.ourJID)
	}
	if _, err := s.db.Exec(ctx, putAppStateSaltQuery, s.ourJID, secret(salt), s.now()); err != nil {
		return fmt.Errorf("tctoken: failed to store NCT salt from app state for %s: %w", s.ourJID, err)
	}
	return nil
}

// RemoveAppStateSalt records an app state REMOVE mutation: the salt is gone,
// and no history sync may restore it.
func (s *Store) RemoveAppStateSalt(ctx context.Context) error {
	if _, err := s.db.Exec(ctx, removeAppStateSaltQuery, s.ourJID, s.now()); err != nil {
		return fmt.Errorf("tctoken: failed to remove NCT salt of %s: %w", s.ourJID, err)
	}
	return nil
}

// SetHistorySalt stores the salt from a history sync, but only if nothing at
// all is stored yet: no salt from either source and no removal. It reports
// whether it stored the salt.
func (s *Store) SetHistorySalt(ctx context.Context, salt []byte) (applied bool, err error) {
	if len(salt) == 0 {
		return false, fmt.Errorf("tctoken: refusing to store an empty NCT salt from history sync for %s", s.ourJID)
	}
	res, err := s.db.Exec(ctx, putHistorySaltQuery, s.ourJID, secret(salt), s.now())
	if err != nil {
		return false, fmt.Errorf("tctoken: failed to store NCT salt from history sync for %s: %w", s.ourJID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("tctoken: failed to check whether NCT salt from history sync was stored for %s: %w", s.ourJID, err)
	}
	return n > 0, nil
}
