package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"
)

// Entry is what is stored about one contact.
type Entry struct {
	// Contact is the key the row is stored under: no device part, the LID
	// when it was known at write time, else the PN.
	Contact types.JID
	// Token is the trust token the contact issued to us; nil if none.
	Token []byte
	// TokenTS is the token's timestamp (unix seconds); 0 if no token.
	TokenTS int64
	// SenderTS is when we last issued our token to the contact (unix
	// seconds); 0 if we never did.
	SenderTS int64
}

// TokenWrite is one token received from a contact.
type TokenWrite struct {
	Contact types.JID
	Token   []byte
	TokenTS int64
}

const (
	// A token write applies when the row has no token yet, when it is newer,
	// or when it has the same timestamp but other bytes (with nothing better
	// to go on, the later write wins). An older one never overwrites: notifications and
	// history syncs arrive in any order. The same bytes with a newer
	// timestamp go through the same path and so only refresh the timestamp.
	// sender_ts is not in the SET list, so a received token never disturbs
	// our own issuing schedule. The WHERE also makes an exact duplicate a
	// no-op, so the affected row count says whether anything changed.
	//
	// The last condition refuses the stored token's own bytes re-filed with
	// our sender timestamp as their token timestamp: that is whatsmeow
	// 2025-12's history-sync write, and the monotonic rule alone would let
	// it replace the real (older) token timestamp.
	putTokenQuery = `
		INSERT INTO tctoken_tokens (our_jid, their_jid, token, token_ts, updated_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (our_jid, their_jid) DO UPDATE
			SET token=excluded.token, token_ts=excluded.token_ts, updated_at=excluded.updated_at
			WHERE (tctoken_tokens.token IS NULL
				OR tctoken_tokens.token_ts IS NULL
				OR excluded.token_ts > tctoken_tokens.token_ts
				OR (excluded.token_ts = tctoken_tokens.token_ts AND excluded.token <> tctoken_tokens.token))
			AND NOT (tctoken_tokens.token IS NOT NULL
				AND excluded.token = tctoken_tokens.token
				AND excluded.token_ts = COALESCE(tctoken_tokens.sender_ts, -1))
	`
	// whatsmeow 2025-12 stores history-sync tokens with the sender timestamp
	// in place of the token timestamp. The monotonic guard above would then
	// protect the wrong value, so this repairs it in place, and only while
	// the row still holds exactly what whatsmeow wrote.
	mendHistoryTimestampQuery = `
		UPDATE tctoken_tokens SET token_ts=$5, updated_at=$6
		WHERE our_jid=$1 AND their_jid=$2 AND token=$3 AND token_ts=$4
	`
	// Only ever moves sender_ts forward: a late or replayed issuance result
	// must not make us issue again early. Creates a row without a token for a
	// contact who never sent us one.
	putSenderTimestampQuery = `
		INSERT INTO tctoken_tokens (our_jid, their_jid, sender_ts, updated_at)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (our_jid, their_jid) DO UPDATE
			SET sender_ts=excluded.sender_ts, updated_at=excluded.updated_at
			WHERE tctoken_tokens.sender_ts IS NULL OR excluded.sender_ts > tctoken_tokens.sender_ts
	`
	// The IN list is filled in by GetMany, one placeholder per contact.
	getEntriesQuery = `
		SELECT their_jid, token, token_ts, sender_ts FROM tctoken_tokens WHERE our_jid=$1 AND their_jid IN (%s)
	`
	getContactsQuery = `
		SELECT their_jid FROM tctoken_tokens WHERE our_jid=$1 AND token IS NOT NULL ORDER BY their_jid
	`
)

// PutTokens stores tokens received from contacts, all in one transaction, and
// reports for each write whether it changed the stored token. A token older
// than the stored one changes nothing; one at least as new replaces it (with
// the same bytes, that only refreshes the timestamp). The sender timestamp is
// never touched.
//
// An empty token or a missing contact fails the whole batch before anything
// is written.
func (s *Store) PutTokens(ctx context.Context, writes ...TokenWrite) ([]bool, error) {
	for i, w := range writes {
		if w.Contact.IsEmpty() {
			return nil, fmt.Errorf("tctoken: token write #%d has no contact", i)
		} else if len(w.Token) == 0 {
			return nil, fmt.Errorf("tctoken: refusing to store an empty token from %s", contactKey(w.Contact))
		} else if w.TokenTS < 0 {
			return nil, fmt.Errorf("tctoken: refusing to store a token from %s with negative timestamp %d", contactKey(w.Contact), w.TokenTS)
		}
	}
	if len(writes) == 0 {
		return nil, nil
	}
	changed := make([]bool, len(writes))
	now := s.now()
	err := s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for i, w := range writes {
			res, err := s.db.Exec(ctx, putTokenQuery, s.ourJID, contactKey(w.Contact), secret(w.Token), w.TokenTS, now)
			if err != nil {
				return fmt.Errorf("failed to store token from %s: %w", contactKey(w.Contact), err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("failed to check whether token from %s was stored: %w", contactKey(w.Contact), err)
			}
			changed[i] = n > 0
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tctoken: failed to store %d token(s) for %s: %w", len(writes), s.ourJID, err)
	}
	return changed, nil
}

// MendHistoryTimestamp corrects the timestamp of a token that whatsmeow filed
// from a history sync with the sender timestamp (wrongTS) in place of the
// token timestamp (rightTS). It only acts while the stored token is still
// exactly token at wrongTS, and it is the one write that may move token_ts
// backwards. It reports whether it changed the row.
func (s *Store) MendHistoryTimestamp(ctx context.Context, contact types.JID, token []byte, wrongTS, rightTS int64) (bool, error) {
	if len(token) == 0 || wrongTS == rightTS {
		return false, nil
	} else if rightTS < 0 {
		return false, fmt.Errorf("tctoken: refusing to set negative token timestamp %d for %s", rightTS, contactKey(contact))
	}
	res, err := s.db.Exec(ctx, mendHistoryTimestampQuery, s.ourJID, contactKey(contact), secret(token), wrongTS, rightTS, s.now())
	if err != nil {
		return false, fmt.Errorf("tctoken: failed to mend history token timestamp of %s: %w", contactKey(contact), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("tctoken: failed to check whether history token timestamp of %s was mended: %w", contactKey(contact), err)
	}
	return n > 0, nil
}

// SetSenderTimestamps records that we issued our token to contacts at ts, in
// one transaction. A stored timestamp only ever moves forward, and a zero ts
// writes nothing.
func (s *Store) SetSenderTimestamps(ctx context.Context, ts int64, contacts ...types.JID) error {
	if ts < 0 {
		return fmt.Errorf("tctoken: refusing to store negative sender timestamp %d", ts)
	} else if ts == 0 || len(contacts) == 0 {
		return nil
	}
	for i, contact := range contacts {
		if contact.IsEmpty() {
			return fmt.Errorf("tctoken: sender timestamp #%d has no contact", i)
		}
	}
	now := s.now()
	err := s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, contact := range contacts {
			if _, err := s.db.Exec(ctx, putSenderTimestampQuery, s.ourJID, contactKey(contact), ts, now); err != nil {
				return fmt.Errorf("failed to store sender timestamp of %s: %w", contactKey(contact), err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("tctoken: failed to store sender timestamps of %d contact(s) for %s: %w", len(contacts), s.ourJID, err)
	}
	return nil
}

// GetMany reads the rows of several keys of one contact (its LID and its
// PN) in a single query, in no particular order. The caller merges them: a
// row filed under the PN before the LID was known still holds a token.
func (s *Store) GetMany(ctx context.Context, contacts ...types.JID) ([]*Entry, error) {
	if len(contacts) == 0 {
		return nil, nil
	}
	keys := make([]string, len(contacts))
	placeholders := make([]string, len(contacts))
	args := make([]any, 1+len(contacts))
	args[0] = s.ourJID
	for i, contact := range contacts {
		keys[i] = contactKey(contact)
		placeholders[i] = fmt.Sprintf("$%d", i+2)
		args[i+1] = keys[i]
	}
	query := fmt.Sprintf(getEntriesQuery, strings.Join(placeholders, ", "))
	entries, err := dbutil.ConvertRowFn[*Entry](scanEntry).NewRowIter(s.db.Query(ctx, query, args...)).AsList()
	if err != nil {
		return nil, fmt.Errorf("tctoken: failed to get token of %s: %w", strings.Join(keys, " or "), err)
	}
	return entries, nil
}

// Contacts lists the contacts we hold a token from, whether or not it has
// expired.
func (s *Store) Contacts(ctx context.Context) ([]types.JID, error) {
	contacts, err := dbutil.ConvertRowFn[types.JID](scanContact).NewRowIter(s.db.Query(ctx, getContactsQuery, s.ourJID)).AsList()
	if err != nil {
		return nil, fmt.Errorf("tctoken: failed to list contacts with tokens for %s: %w", s.ourJID, err)
	}
	return contacts, nil
}

func scanEntry(row dbutil.Scannable) (*Entry, error) {
	var entry Entry
	var contact string
	var tokenTS, senderTS sql.NullInt64
	if err := row.Scan(&contact, &entry.Token, &tokenTS, &senderTS); err != nil {
		return nil, err
	}
	jid, err := types.ParseJID(contact)
	if err != nil {
		return nil, fmt.Errorf("invalid contact %q in database: %w", contact, err)
	}
	entry.Contact = jid
	entry.TokenTS = tokenTS.Int64
	entry.SenderTS = senderTS.Int64
	return &entry, nil
}

func scanContact(row dbutil.Scannable) (types.JID, error) {
	var contact string
	if err := row.Scan(&contact); err != nil {
		return types.EmptyJID, err
	}
	jid, err := types.ParseJID(contact)
	if err != nil {
		return types.EmptyJID, fmt.Errorf("invalid contact %q in database: %w", contact, err)
	}
	return jid, nil
}

// A token is expired on the receiver side when its timestamp is before the
// cutoff; a zero timestamp is always expired, whatever the cutoff. Our own
// issued token is still valid while sender_ts >= the sender cutoff.
const (
	// Rows with nothing left worth keeping: no token, and no valid issuance.
	// Deleted first so that they are not counted as pruned tokens below.
	pruneSenderOnlyQuery = `
		DELETE FROM tctoken_tokens
		WHERE our_jid=$1 AND token IS NULL AND (sender_ts IS NULL OR sender_ts < $2)
	`
	pruneWholeRowsQuery = `
		DELETE FROM tctoken_tokens
		WHERE our_jid=$1 AND token IS NOT NULL AND (token_ts = 0 OR token_ts < $2)
			AND (sender_ts IS NULL OR sender_ts < $3)
	`
	// An expired token whose row still has a valid sender timestamp: keep the
	// row, or we would forget that we issued and issue again too early. The
	// delete above has already taken the rows without one.
	pruneTokensOnlyQuery = `
		UPDATE tctoken_tokens SET token=NULL, token_ts=NULL, updated_at=$3
		WHERE our_jid=$1 AND token IS NOT NULL AND (token_ts = 0 OR token_ts < $2)
	`
)

// Prune removes the tokens expired on the receiver side (token_ts <
// recvCutoff, or zero) in one transaction. A row whose sender timestamp is
// still valid (>= sendCutoff) keeps that timestamp and loses only the token;
// other rows go entirely, as do rows without a token whose sender timestamp
// has expired. It returns the number of tokens removed, not counting rows
// that held only a sender timestamp.
func (s *Store) Prune(ctx context.Context, recvCutoff, sendCutoff int64) (int64, error) {
	var removed int64
	err := s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		if _, err := s.db.Exec(ctx, pruneSenderOnlyQuery, s.ourJID, sendCutoff); err != nil {
			return fmt.Errorf("failed to delete expired sender timestamps: %w", err)
		}
		res, err := s.db.Exec(ctx, pruneWholeRowsQuery, s.ourJID, recvCutoff, sendCutoff)
		if err != nil {
			return fmt.Errorf("failed to delete expired tokens: %w", err)
		}
		deleted, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("failed to count deleted tokens: %w", err)
		}
		res, err = s.db.Exec(ctx, pruneTokensOnlyQuery, s.ourJID, recvCutoff, s.now())
		if err != nil {
			return fmt.Errorf("failed to clear expired tokens: %w", err)
		}
		cleared, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("failed to count cleared tokens: %w", err)
		}
		removed = deleted + cleared
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("tctoken: failed to prune tokens of %s: %w", s.ourJID, err)
	}
	return removed, nil
}
