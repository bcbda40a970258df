package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// NewChatCap is the account's new-chat cap as the server last reported it:
// how many new one-on-one chats the account may start in the current
// cycle, and where it stands.
type NewChatCap struct {
	// Status is the server's capping_status, kept as sent.
	Status string
	// Total and Used are total_quota and used_quota; TotalKnown and
	// UsedKnown say whether the server sent them.
	Total      int64
	TotalKnown bool
	Used       int64
	UsedKnown  bool
	// CycleStart, CycleEnd and ServerSent are unix seconds, 0 when absent.
	CycleStart int64
	CycleEnd   int64
	ServerSent int64
	OTEStatus  string
	MVStatus   string
	// Source is "query" or "notification".
	Source string
	// FetchedAt is when the plugin received it (unix seconds).
	FetchedAt int64
}

const (
	getNewChatCapQuery = `
		SELECT status, total_quota, total_known, used_quota, used_known, cycle_start, cycle_end, server_sent,
			ote_status, mv_status, source, fetched_at
		FROM tctoken_new_chat_cap WHERE our_jid=$1
	`
	putNewChatCapQuery = `
		INSERT INTO tctoken_new_chat_cap (our_jid, status, total_quota, total_known, used_quota, used_known,
			cycle_start, cycle_end, server_sent, ote_status, mv_status, source, fetched_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (our_jid) DO UPDATE SET status=excluded.status, total_quota=excluded.total_quota,
			total_known=excluded.total_known, used_quota=excluded.used_quota, used_known=excluded.used_known,
			cycle_start=excluded.cycle_start, cycle_end=excluded.cycle_end, server_sent=excluded.server_sent,
			ote_status=excluded.ote_status, mv_status=excluded.mv_status, source=excluded.source,
			fetched_at=excluded.fetched_at
	`
	deleteAccountNewChatCapQuery = `DELETE FROM tctoken_new_chat_cap WHERE our_jid=$1`
)

// GetNewChatCap returns the recorded new-chat cap, or nil if none was
// ever received.
func (s *Store) GetNewChatCap(ctx context.Context) (*NewChatCap, error) {
	var nc NewChatCap
	err := s.db.QueryRow(ctx, getNewChatCapQuery, s.ourJID).Scan(&nc.Status, &nc.Total, &nc.TotalKnown, &nc.Used, &nc.UsedKnown,
		&nc.CycleStart, &nc.CycleEnd, &nc.ServerSent, &nc.OTEStatus, &nc.MVStatus, &nc.Source, &nc.FetchedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("tctoken: failed to read the new-chat cap of %s: %w", s.ourJID, err)
	}
	return &nc, nil
}

// PutNewChatCap records the new-chat cap as now known, replacing the last.
func (s *Store) PutNewChatCap(ctx context.Context, nc NewChatCap) error {
	_, err := s.db.Exec(ctx, putNewChatCapQuery, s.ourJID, nc.Status, nc.Total, nc.TotalKnown, nc.Used, nc.UsedKnown,
		nc.CycleStart, nc.CycleEnd, nc.ServerSent, nc.OTEStatus, nc.MVStatus, nc.Source, nc.FetchedAt)
	if err != nil {
		return fmt.Errorf("tctoken: failed to record the new-chat cap of %s: %w", s.ourJID, err)
	}
	return nil
}
