package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"

	"go.mau.fi/util/dbutil"
)

// PropsSnapshot is the cached result of the AB props fetches.
type PropsSnapshot struct {
	// Hash is the server's hash of the props, sent with the next fetch.
	Hash string
	// Refresh is how long the server said the props stay fresh, in seconds.
	Refresh int64
	// FetchedAt is when they were fetched (unix seconds).
	FetchedAt int64
	// Values maps config_code to config_value.
	Values map[int]string
}

const (
	// One row per prop for the whole snapshot, with the metadata repeated on
	// every row; a LEFT JOIN so that a fetch that returned no props still
	// counts as fetched. A single statement reads a consistent snapshot even
	// while another connection replaces the props.
	getPropsQuery = `
		SELECT m.hash, m.refresh, m.fetched_at, p.code, p.value
		FROM tctoken_ab_props_meta m
		LEFT JOIN tctoken_ab_props p ON p.our_jid=m.our_jid
		WHERE m.our_jid=$1
	`
	putPropsMetaQuery = `
		INSERT INTO tctoken_ab_props_meta (our_jid, hash, refresh, fetched_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (our_jid) DO UPDATE SET hash=excluded.hash, refresh=excluded.refresh, fetched_at=excluded.fetched_at
	`
	deletePropsQuery = `DELETE FROM tctoken_ab_props WHERE our_jid=$1`
	putPropQuery     = `
		INSERT INTO tctoken_ab_props (our_jid, code, value) VALUES ($1, $2, $3)
		ON CONFLICT (our_jid, code) DO UPDATE SET value=excluded.value
	`
)

type propValue struct {
	code  int
	value string
}

func (p propValue) GetMassInsertValues() [2]any {
	return [2]any{p.code, p.value}
}

var putPropsMassInsertBuilder = dbutil.NewMassInsertBuilder[propValue, [1]any](putPropQuery, "($1, $%d, $%d)")

// Props come in the hundreds; 1000 per statement stays far below the
// parameter limits of both SQLite (32766) and PostgreSQL (65535).
const propsBatchSize = 1000

// GetProps returns the cached AB props, or nil if they were never fetched.
func (s *Store) GetProps(ctx context.Context) (*PropsSnapshot, error) {
	rows, err := s.db.Query(ctx, getPropsQuery, s.ourJID)
	if err != nil {
		return nil, fmt.Errorf("tctoken: failed to get AB props of %s: %w", s.ourJID, err)
	}
	defer rows.Close()
	var snap *PropsSnapshot
	for rows.Next() {
		var hash string
		var refresh, fetchedAt int64
		var code sql.NullInt64
		var value sql.NullString
		if err = rows.Scan(&hash, &refresh, &fetchedAt, &code, &value); err != nil {
			return nil, fmt.Errorf("tctoken: failed to read AB props of %s: %w", s.ourJID, err)
		}
		if snap == nil {
			snap = &PropsSnapshot{Hash: hash, Refresh: refresh, FetchedAt: fetchedAt, Values: map[int]string{}}
		}
		if code.Valid {
			snap.Values[int(code.Int64)] = value.String
		}
	}
	if err = rows.Err(); err != nil {
		return nil, fmt.Errorf("tctoken: failed to read AB props of %s: %w", s.ourJID, err)
	}
	return snap, nil
}

// ReplaceProps stores a full AB props reply: the stored values become exactly
// snap.Values.
func (s *Store) ReplaceProps(ctx context.Context, snap PropsSnapshot) error {
	return s.putProps(ctx, snap, true)
}

// MergeProps stores a delta AB props reply: the codes in snap.Values are
// added or updated, the others kept.
func (s *Store) MergeProps(ctx context.Context, snap PropsSnapshot) error {
	return s.putProps(ctx, snap, false)
}

func (s *Store) putProps(ctx context.Context, snap PropsSnapshot, replace bool) error {
	// Sorted, so that concurrent writers lock rows in the same order.
	values := make([]propValue, 0, len(snap.Values))
	for _, code := range slices.Sorted(maps.Keys(snap.Values)) {
		values = append(values, propValue{code: code, value: snap.Values[code]})
	}
	err := s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		if replace {
			if _, err := s.db.Exec(ctx, deletePropsQuery, s.ourJID); err != nil {
				return fmt.Errorf("failed to delete old props: %w", err)
			}
		}
		if _, err := s.db.Exec(ctx, putPropsMetaQuery, s.ourJID, snap.Hash, snap.Refresh, snap.FetchedAt); err != nil {
			return fmt.Errorf("failed to store props metadata: %w", err)
		}
		for chunk := range slices.Chunk(values, propsBatchSize) {
			query, params := putPropsMassInsertBuilder.Build([1]any{s.ourJID}, chunk)
			if _, err := s.db.Exec(ctx, query, params...); err != nil {
				return fmt.Errorf("failed to store props: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		kind := "delta"
		if replace {
			kind = "full"
		}
		return fmt.Errorf("tctoken: failed to store %s AB props (%d values) for %s: %w", kind, len(values), s.ourJID, err)
	}
	return nil
}
