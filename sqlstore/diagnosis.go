package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Timelock is what is known of the account's reach-out timelock: the
// server's restriction on messaging new contacts, which no token lifts.
type Timelock struct {
	Active bool
	// Source is "query" (the server's answer to the timelock query),
	// "notification" (the server announced it) or "pattern" (first
	// contacts refused with 463 while known contacts got through).
	Source string
	// EndsAt is when the enforcement ends (unix seconds), 0 when unknown.
	EndsAt int64
	// Enforcement is the server's enforcement type, "" when unknown.
	Enforcement string
	// UpdatedAt is when this was last recorded (unix seconds).
	UpdatedAt int64
}

// SaltBackfill is the last re-read of regular_high for a missing salt.
type SaltBackfill struct {
	AttemptedAt int64
	// Result is "found", "absent" or "failed".
	Result   string
	Attempts int64
}

const (
	getTimelockQuery = `SELECT active, source, ends_at, enforcement, updated_at FROM tctoken_timelock WHERE our_jid=$1`
	putTimelockQuery = `
		INSERT INTO tctoken_timelock (our_jid, active, source, ends_at, enforcement, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (our_jid) DO UPDATE SET active=excluded.active, source=excluded.source, ends_at=excluded.ends_at,
			enforcement=excluded.enforcement, updated_at=excluded.updated_at
	`
	getSaltBackfillQuery = `SELECT attempted_at, result, attempts FROM tctoken_salt_backfill WHERE our_jid=$1`
	// attempts counts every attempt the account ever made, so that an
	// operator sees a backfill that keeps finding nothing.
	putSaltBackfillQuery = `
		INSERT INTO tctoken_salt_backfill (our_jid, attempted_at, result, attempts) VALUES ($1, $2, $3, 1)
		ON CONFLICT (our_jid) DO UPDATE SET attempted_at=excluded.attempted_at, result=excluded.result,
			attempts=tctoken_salt_backfill.attempts + 1
	`
)

// GetTimelock returns the recorded timelock, or nil if none was ever seen.
func (s *Store) GetTimelock(ctx context.Context) (*Timelock, error) {
	var tl Timelock
	err := s.db.QueryRow(ctx, getTimelockQuery, s.ourJID).Scan(&tl.Active, &tl.Source, &tl.EndsAt, &tl.Enforcement, &tl.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("tctoken: failed to read the timelock of %s: %w", s.ourJID, err)
	}
	return &tl, nil
}

// PutTimelock records the timelock as now known; UpdatedAt is stamped here.
func (s *Store) PutTimelock(ctx context.Context, tl Timelock) error {
	if _, err := s.db.Exec(ctx, putTimelockQuery, s.ourJID, tl.Active, tl.Source, tl.EndsAt, tl.Enforcement, s.now()); err != nil {
		return fmt.Errorf("tctoken: failed to record the timelock of %s: %w", s.ourJID, err)
	}
	return nil
}

// GetSaltBackfill returns the last salt backfill attempt, or nil if none.
func (s *Store) GetSaltBackfill(ctx context.Context) (*SaltBackfill, error) {
	var b SaltBackfill
	err := s.db.QueryRow(ctx, getSaltBackfillQuery, s.ourJID).Scan(&b.AttemptedAt, &b.Result, &b.Attempts)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("tctoken: failed to read the salt backfill status of %s: %w", s.ourJID, err)
	}
	return &b, nil
}

// PutSaltBackfill records one salt backfill attempt made at at.
func (s *Store) PutSaltBackfill(ctx context.Context, at int64, result string) error {
	if _, err := s.db.Exec(ctx, putSaltBackfillQuery, s.ourJID, at, result); err != nil {
		return fmt.Errorf("tctoken: failed to record a salt backfill attempt of %s: %w", s.ourJID, err)
	}
	return nil
}
