package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

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
	// SenderTS, when not zero, also records when we issued our token to the
	// contact (a history sync carries both), in the same statement; it only
	// ever moves forward, whether or not the token is taken.
	SenderTS int64
}

const (
	// tokenWins: a token write applies when the row has no token yet, when
	// it is newer, or when it has the same timestamp but other bytes (with
	// nothing better to go on, the later write wins). An older one never
	// overwrites: notifications and history syncs arrive in any order. The
	// same bytes with a newer timestamp only refresh the timestamp, and an
	// exact duplicate is a no-op.
	//
	// The last condition refuses the stored token's own bytes re-filed with
	// our sender timestamp as their token timestamp: that is whatsmeow
	// 2025-12's history-sync write, and the monotonic rule alone would let
	// it replace the real (older) token timestamp.
	tokenWins = `(tctoken_tokens.token IS NULL
				OR tctoken_tokens.token_ts IS NULL
				OR excluded.token_ts > tctoken_tokens.token_ts
				OR (excluded.token_ts = tctoken_tokens.token_ts AND excluded.token <> tctoken_tokens.token))
			AND NOT (tctoken_tokens.token IS NOT NULL
				AND excluded.token = tctoken_tokens.token
				AND excluded.token_ts = COALESCE(tctoken_tokens.sender_ts, -1))`
	// senderWins: our sender timestamp only moves forward; a write without
	// one (NULL) never touches it, so a received token never disturbs our
	// own issuing schedule.
	senderWins = `(excluded.sender_ts IS NOT NULL
			AND (tctoken_tokens.sender_ts IS NULL OR excluded.sender_ts > tctoken_tokens.sender_ts))`
	// putTokensQuery is filled in by PutTokens with its rows: a VALUES list
	// of one ($1, $n, $n+1, $n+2, $n+3, $2) tuple per row, or on PostgreSQL
	// unnestTokensSource (see pgarray.go). A write that carries our sender
	// timestamp too (a history sync) sets both in one statement, where a
	// token write and a sender write would update each row twice (on
	// PostgreSQL, a thousand-row history blob's separate sender write alone
	// cost more than whatsmeow's whole write). Each part follows its own rule
	// against the row as it was. RETURNING gives the token timestamp the row
	// holds now: the token part applied when that is the write's (when it
	// already was, the row held the same token, so saying so loses nothing).
	putTokensQuery = `
		INSERT INTO tctoken_tokens (our_jid, their_jid, token, token_ts, sender_ts, updated_at)
		%s
		ON CONFLICT (our_jid, their_jid) DO UPDATE SET
			token = CASE WHEN ` + tokenWins + ` THEN excluded.token ELSE tctoken_tokens.token END,
			token_ts = CASE WHEN ` + tokenWins + ` THEN excluded.token_ts ELSE tctoken_tokens.token_ts END,
			sender_ts = CASE WHEN ` + senderWins + ` THEN excluded.sender_ts ELSE tctoken_tokens.sender_ts END,
			updated_at = excluded.updated_at
		WHERE (` + tokenWins + `) OR ` + senderWins + `
		RETURNING their_jid, token_ts
	`
	// putTokensOnlyQuery is putTokensQuery for a batch that carries no
	// sender timestamp (every notification and every write whatsmeow
	// makes): the sender part can never win, so the update is the token
	// rule alone, written once instead of three times. The database
	// parses and plans the statement on every call, and for a single
	// token that was most of the write.
	putTokensOnlyQuery = `
		INSERT INTO tctoken_tokens (our_jid, their_jid, token, token_ts, sender_ts, updated_at)
		%s
		ON CONFLICT (our_jid, their_jid) DO UPDATE SET
			token = excluded.token, token_ts = excluded.token_ts, updated_at = excluded.updated_at
		WHERE ` + tokenWins + `
		RETURNING their_jid, token_ts
	`
	// whatsmeow 2025-12 stores history-sync tokens with the sender timestamp
	// in place of the token timestamp. The monotonic guard above would then
	// protect the wrong value, so this repairs it in place, and only while
	// the row still holds exactly what whatsmeow wrote. A history blob's
	// mends are one statement: one each cost a round trip per conversation,
	// more than whatsmeow's whole write of the blob. On SQLite %s is the
	// mends as one JSON parameter (mendHistoryTimestampsJSON) or, without
	// SQLite's JSON functions, a VALUES list in its own placeholders;
	// SQLite looks each row up by its key.
	mendHistoryTimestampsQuery = `
		WITH u(our_jid, their_jid, token, wrong_ts, right_ts, updated_at) AS (%s)
		UPDATE tctoken_tokens SET token_ts=u.right_ts, updated_at=u.updated_at
		FROM u
		WHERE tctoken_tokens.our_jid=u.our_jid AND tctoken_tokens.their_jid=u.their_jid
			AND tctoken_tokens.token=u.token AND tctoken_tokens.token_ts=u.wrong_ts
		RETURNING tctoken_tokens.their_jid, tctoken_tokens.token, tctoken_tokens.token_ts
	`
	// On PostgreSQL the mends come as arrays (see pgarray.go), and the
	// statement finds each mend's row by its key first, then updates those
	// rows by their physical address. Joined to the table directly, the
	// mends let the planner hash or merge-join the whole table: at 100,000
	// rows it hashed them all for every blob (260 ms against 30 ms), and on
	// a table just filled, without statistics, it merge-joined on the token
	// and timestamp (a minute and more). The lookup per mend can only use
	// the primary key: the token and timestamp are compared inside IS TRUE,
	// which no index serves.
	mendHistoryTimestampsPostgres = `
		WITH u(their_jid, token, wrong_ts, right_ts) AS MATERIALIZED (
			SELECT u.their_jid, decode(u.token, 'hex'), u.wrong_ts, u.right_ts
			FROM unnest($3::text[], $4::text[], $5::bigint[], $6::bigint[]) AS u(their_jid, token, wrong_ts, right_ts)
		)
		UPDATE tctoken_tokens SET token_ts=u.right_ts, updated_at=$2
		FROM u
		WHERE tctoken_tokens.ctid = ANY(ARRAY(
				SELECT (SELECT t.ctid FROM tctoken_tokens t WHERE t.our_jid=$1 AND t.their_jid=u.their_jid
					AND (t.token=u.token AND t.token_ts=u.wrong_ts) IS TRUE)
				FROM u))
			AND tctoken_tokens.our_jid=$1 AND tctoken_tokens.their_jid=u.their_jid
			AND tctoken_tokens.token=u.token AND tctoken_tokens.token_ts=u.wrong_ts
		RETURNING tctoken_tokens.their_jid, tctoken_tokens.token, tctoken_tokens.token_ts
	`
	// Only ever moves sender_ts forward: a late or replayed issuance result
	// must not make us issue again early. Creates a row without a token for a
	// contact who never sent us one.
	putSenderTimestampsQuery = `
		INSERT INTO tctoken_tokens (our_jid, their_jid, sender_ts, updated_at)
		%s
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

// putTokensChunk bounds the rows of one INSERT: 3 placeholders a row stays
// far below SQLite's (32,766) and PostgreSQL's (65,535) limits on bound
// parameters, and a history blob of a thousand conversations is one
// statement.
const putTokensChunk = 2000

// tuples writes count value tuples of the given width for a multi-row
// statement: each starts with $1 (the account), then width fresh
// parameters from first on, then the shared tail (such as ", $2"). The
// parameters are written in the dialect's own syntax: dbutil rewrites $n to
// ?n for SQLite with a regular expression on every statement, which costs
// more than the inserts themselves for a statement of a thousand rows;
// written as ?n there is nothing to rewrite.
func (s *Store) tuples(count, width, first int, tail string) string {
	mark := s.mark()
	tail = strings.ReplaceAll(tail, "$", string(mark))
	var b strings.Builder
	b.Grow(count * (width*7 + 8 + len(tail)))
	n := first
	for i := range count {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		b.WriteByte(mark)
		b.WriteByte('1')
		for range width {
			b.WriteString(", ")
			b.WriteByte(mark)
			b.WriteString(strconv.Itoa(n))
			n++
		}
		b.WriteString(tail)
		b.WriteByte(')')
	}
	return b.String()
}

// mark is the placeholder mark of the dialect: ? on SQLite (see tuples).
func (s *Store) mark() byte {
	if s.db.Dialect == dbutil.SQLite {
		return '?'
	}
	return '$'
}

// PutTokens stores tokens received from contacts, all in one transaction, and
// reports for each write whether it changed the stored token. A token older
// than the stored one changes nothing; one at least as new replaces it (with
// the same bytes, that only refreshes the timestamp). The sender timestamp is
// never touched.
//
// The rows go in multi-row statements of putTokensChunk rows. Several
// writes for one contact in a batch are settled first, as the database
// would settle them one after the other: the newest (the later one on a tie)
// is written, the others report false.
//
// An empty token, a missing contact or one CheckContact refuses fails the
// whole batch before anything is written (callers check each write first).
func (s *Store) PutTokens(ctx context.Context, writes ...TokenWrite) ([]bool, error) {
	for i, w := range writes {
		if w.Contact.IsEmpty() {
			return nil, fmt.Errorf("tctoken: token write #%d has no contact", i)
		} else if err := CheckContact(w.Contact); err != nil {
			return nil, fmt.Errorf("tctoken: refusing token write #%d: %w", i, err)
		} else if len(w.Token) == 0 {
			return nil, fmt.Errorf("tctoken: refusing to store an empty token from %s", contactKey(w.Contact))
		} else if w.TokenTS < 0 {
			return nil, fmt.Errorf("tctoken: refusing to store a token from %s with negative timestamp %d", contactKey(w.Contact), w.TokenTS)
		}
	}
	if len(writes) == 0 {
		return nil, nil
	}
	// winner: contact key -> index of the write that goes to the database;
	// sender: the newest sender timestamp of the contact's writes.
	winner := make(map[string]int, len(writes))
	order := make([]string, 0, len(writes))
	sender := make(map[string]int64)
	for i, w := range writes {
		key := contactKey(w.Contact)
		prev, seen := winner[key]
		if !seen {
			order = append(order, key)
			winner[key] = i
		} else if w.TokenTS >= writes[prev].TokenTS {
			winner[key] = i
		}
		if w.SenderTS > 0 {
			sender[key] = max(sender[key], w.SenderTS)
		}
	}
	return s.putTokens(ctx, writes, order, winner, sender)
}

// putTokensFor is the upsert for a batch: the token rule alone when no
// write in it carries a sender timestamp.
func putTokensFor(sender map[string]int64) string {
	return [...]string{putTokensQuery, putTokensOnlyQuery}[putTokensKind(sender)]
}

// putTokensKind is 1 for a batch without sender timestamps, else 0.
func putTokensKind(sender map[string]int64) int {
	if len(sender) == 0 {
		return 1
	}
	return 0
}

// How a batch's rows reach the database: as arrays (PostgreSQL) or as one
// JSON parameter (SQLite, see jsonrows.go). Their statements are the same
// text for every batch, so they are written out once.
const (
	rowsArrays = iota
	rowsJSON
)

// jsonTokensSource is unnestTokensSource for SQLite: $3 is the rows as a
// JSON array of [contact, token in hex, token_ts, sender_ts or null]. The
// WHERE is SQLite's: without it, ON CONFLICT would read as a join's ON.
const jsonTokensSource = `
		SELECT ?1, u.value->>0, unhex(u.value->>1), u.value->>2, u.value->>3, ?2
		FROM json_each(?3) AS u WHERE true
	`

// mendHistoryTimestampsJSON is mendHistoryTimestampsQuery with the mends
// as one JSON parameter (see jsonrows.go): [contact, token in hex, wrong,
// right].
var mendHistoryTimestampsJSON = fmt.Sprintf(mendHistoryTimestampsQuery,
	`SELECT ?1, u.value->>0, unhex(u.value->>1), u.value->>2, u.value->>3, ?2 FROM json_each(?3) AS u`)

// putTokensStatements[kind][rows] is putTokensQuery (kind 0) or
// putTokensOnlyQuery (kind 1) with the rows as arrays or as JSON.
var putTokensStatements = [2][2]string{
	{fmt.Sprintf(putTokensQuery, unnestTokensSource), fmt.Sprintf(putTokensQuery, jsonTokensSource)},
	{fmt.Sprintf(putTokensOnlyQuery, unnestTokensSource), fmt.Sprintf(putTokensOnlyQuery, jsonTokensSource)},
}

// putTokens writes the settled batch: for each contact in order, the write
// winner names and the newest sender timestamp (none if missing), in
// multi-row statements of putTokensChunk rows.
func (s *Store) putTokens(ctx context.Context, writes []TokenWrite, order []string, winner map[string]int, sender map[string]int64) ([]bool, error) {
	changed := make([]bool, len(writes))
	now := s.now()
	asJSON := s.rowsAsJSON(ctx)
	err := s.inTxnIfMany(ctx, len(order), func(ctx context.Context) error {
		for start := 0; start < len(order); start += putTokensChunk {
			keys := order[start:min(start+putTokensChunk, len(order))]
			var query string
			var args []any
			if s.db.Dialect == dbutil.Postgres {
				tokens, stamps, senders := make([][]byte, len(keys)), make([]int64, len(keys)), make([]int64, len(keys))
				for i, key := range keys {
					w := writes[winner[key]]
					tokens[i], stamps[i], senders[i] = w.Token, w.TokenTS, sender[key]
				}
				query = putTokensStatements[putTokensKind(sender)][rowsArrays]
				args = []any{s.ourJID, now, pgTextArray(keys), pgHexArray(tokens), pgInt64Array(stamps), pgInt64Array(senders)}
			} else if asJSON {
				rows := newJSONRows(len(keys))
				for _, key := range keys {
					w := writes[winner[key]]
					rows.row()
					rows.str(key)
					rows.hex(w.Token)
					rows.int(w.TokenTS)
					rows.intOrNull(sender[key])
					rows.end()
				}
				query = putTokensStatements[putTokensKind(sender)][rowsJSON]
				args = []any{s.ourJID, now, rows.secretText()}
			} else {
				args = make([]any, 2, 2+4*len(keys))
				args[0], args[1] = s.ourJID, now
				for _, key := range keys {
					w := writes[winner[key]]
					var senderTS any
					if ts := sender[key]; ts > 0 {
						senderTS = ts
					}
					args = append(args, key, secret(w.Token), w.TokenTS, senderTS)
				}
				query = fmt.Sprintf(putTokensFor(sender), "VALUES "+s.tuples(len(keys), 4, 3, ", $2"))
			}
			var rows dbutil.Rows
			var err error
			if s.db.Dialect == dbutil.Postgres || asJSON {
				rows, err = s.queryPrepared(ctx, query, args...)
			} else {
				rows, err = s.db.Query(ctx, query, args...)
			}
			if err != nil {
				return fmt.Errorf("failed to store the tokens and sender timestamps from %s: %w", nameContacts(keys), err)
			}
			err = func() error {
				defer rows.Close()
				for rows.Next() {
					var key string
					var tokenTS sql.NullInt64
					if err := rows.Scan(&key, &tokenTS); err != nil {
						return err
					}
					if i, ok := winner[key]; ok && tokenTS.Valid && tokenTS.Int64 == writes[i].TokenTS {
						changed[i] = true
					}
				}
				return rows.Err()
			}()
			if err != nil {
				return fmt.Errorf("failed to store the tokens and sender timestamps from %s: %w", nameContacts(keys), err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tctoken: failed to store %d token(s) for %s: %w", len(writes), s.ourJID, err)
	}
	return changed, nil
}

// inTxnIfMany runs fn in a transaction only when it takes more than one
// statement (rows beyond one chunk): a single statement is atomic by
// itself, and BEGIN and COMMIT would double the round trips of the
// one-token notification path.
func (s *Store) inTxnIfMany(ctx context.Context, rows int, fn func(ctx context.Context) error) error {
	if rows <= putTokensChunk {
		return fn(ctx)
	}
	return s.db.DoTxn(ctx, nil, fn)
}

// nameContacts lists contact keys for an error message, the first ten of
// them and how many more.
func nameContacts(keys []string) string {
	const shown = 10
	if len(keys) <= shown {
		return strings.Join(keys, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(keys[:shown], ", "), len(keys)-shown)
}

// MendHistoryTimestamp corrects the timestamp of a token that whatsmeow filed
// from a history sync with the sender timestamp (wrongTS) in place of the
// token timestamp (rightTS). It only acts while the stored token is still
// exactly token at wrongTS, and it is the one write that may move token_ts
// backwards. It reports whether it changed the row.
func (s *Store) MendHistoryTimestamp(ctx context.Context, contact types.JID, token []byte, wrongTS, rightTS int64) (bool, error) {
	changed, err := s.MendHistoryTimestamps(ctx, HistoryMend{Contact: contact, Token: token, WrongTS: wrongTS, RightTS: rightTS})
	if err != nil {
		return false, err
	}
	return changed[0], nil
}

// SenderWrite is one sender timestamp: when we issued our token to Contact.
type SenderWrite struct {
	Contact types.JID
	TS      int64
}

// HistoryMend is one correction MendHistoryTimestamps makes: Contact's row
// holding Token at WrongTS (our sender timestamp, as whatsmeow 2025-12 files
// it) gets RightTS, the token's own timestamp.
type HistoryMend struct {
	Contact          types.JID
	Token            []byte
	WrongTS, RightTS int64
}

// MendHistoryTimestamps applies MendHistoryTimestamp to each mend, in
// multi-row statements of putTokensChunk mends (one for a history blob of
// a thousand conversations), and reports which changed a row. Each mend is
// checked against the row as it was before the statement. A mend without
// a token, or whose timestamps agree, changes nothing; a negative RightTS
// fails the whole batch before anything is written. Of several mends for
// one contact with the same token and wrong timestamp, the first counts, as
// it would one after the other.
func (s *Store) MendHistoryTimestamps(ctx context.Context, mends ...HistoryMend) ([]bool, error) {
	changed := make([]bool, len(mends))
	type mendKey struct {
		contact, token string
		wrongTS        int64
	}
	// first: the mend that goes to the database for each (contact, token,
	// wrong timestamp); order: those mends' indexes, in order.
	first := make(map[mendKey]int, len(mends))
	order := make([]int, 0, len(mends))
	for i, m := range mends {
		if m.RightTS < 0 {
			return nil, fmt.Errorf("tctoken: refusing to set negative token timestamp %d for %s", m.RightTS, contactKey(m.Contact))
		} else if err := CheckContact(m.Contact); err != nil {
			return nil, fmt.Errorf("tctoken: refusing history mend #%d: %w", i, err)
		}
		if len(m.Token) == 0 || m.WrongTS == m.RightTS {
			continue
		}
		key := mendKey{contactKey(m.Contact), string(m.Token), m.WrongTS}
		if _, seen := first[key]; !seen {
			first[key] = i
			order = append(order, i)
		}
	}
	if len(order) == 0 {
		return changed, nil
	}
	now := s.now()
	asJSON := s.rowsAsJSON(ctx)
	err := s.inTxnIfMany(ctx, len(order), func(ctx context.Context) error {
		for start := 0; start < len(order); start += putTokensChunk {
			chunk := order[start:min(start+putTokensChunk, len(order))]
			keys := make([]string, len(chunk))
			for i, m := range chunk {
				keys[i] = contactKey(mends[m].Contact)
			}
			var query string
			var args []any
			if s.db.Dialect == dbutil.Postgres {
				tokens, wrong, right := make([][]byte, len(chunk)), make([]int64, len(chunk)), make([]int64, len(chunk))
				for i, m := range chunk {
					tokens[i], wrong[i], right[i] = mends[m].Token, mends[m].WrongTS, mends[m].RightTS
				}
				query = mendHistoryTimestampsPostgres
				args = []any{s.ourJID, now, pgTextArray(keys), pgHexArray(tokens), pgInt64Array(wrong), pgInt64Array(right)}
			} else if asJSON {
				rows := newJSONRows(len(chunk))
				for i, m := range chunk {
					rows.row()
					rows.str(keys[i])
					rows.hex(mends[m].Token)
					rows.int(mends[m].WrongTS)
					rows.int(mends[m].RightTS)
					rows.end()
				}
				query = mendHistoryTimestampsJSON
				args = []any{s.ourJID, now, rows.secretText()}
			} else {
				args = make([]any, 2, 2+4*len(chunk))
				args[0], args[1] = s.ourJID, now
				for i, m := range chunk {
					args = append(args, keys[i], secret(mends[m].Token), mends[m].WrongTS, mends[m].RightTS)
				}
				query = fmt.Sprintf(mendHistoryTimestampsQuery, "VALUES "+s.tuples(len(chunk), 4, 3, ", $2"))
			}
			var rows dbutil.Rows
			var err error
			if s.db.Dialect == dbutil.Postgres || asJSON {
				rows, err = s.queryPrepared(ctx, query, args...)
			} else {
				rows, err = s.db.Query(ctx, query, args...)
			}
			if err == nil {
				err = scanMended(rows, mends, chunk, changed)
			}
			if err != nil {
				return fmt.Errorf("failed to mend the history token timestamps of %s: %w", nameContacts(keys), err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tctoken: failed to mend %d history token timestamp(s) for %s: %w", len(order), s.ourJID, err)
	}
	return changed, nil
}

// scanMended marks in changed the mends of chunk (indexes into mends) whose
// rows the statement returned. A row comes back with the token it holds
// and its new timestamp: the (first) mend of that contact, token and right
// timestamp changed it. SQLite's RETURNING cannot name the mend's row; two
// mends alike but for their wrong timestamp could only be told apart by it,
// and either names the row as it is now.
func scanMended(rows dbutil.Rows, mends []HistoryMend, chunk []int, changed []bool) (err error) {
	defer func() {
		if closeErr := rows.Close(); err == nil {
			err = closeErr
		}
	}()
	type sentKey struct {
		contact, token string
		rightTS        int64
	}
	sent := make(map[sentKey]int, len(chunk))
	for _, i := range chunk {
		key := sentKey{contactKey(mends[i].Contact), string(mends[i].Token), mends[i].RightTS}
		if _, seen := sent[key]; !seen {
			sent[key] = i
		}
	}
	for rows.Next() {
		var key sentKey
		var token []byte
		if err = rows.Scan(&key.contact, &token, &key.rightTS); err != nil {
			return err
		}
		key.token = string(token)
		if i, ok := sent[key]; ok {
			changed[i] = true
		}
	}
	return rows.Err()
}

// SetSenderTimestamps records that we issued our token to contacts at ts, in
// one transaction. A stored timestamp only ever moves forward, and a zero ts
// writes nothing.
func (s *Store) SetSenderTimestamps(ctx context.Context, ts int64, contacts ...types.JID) error {
	writes := make([]SenderWrite, len(contacts))
	for i, contact := range contacts {
		writes[i] = SenderWrite{Contact: contact, TS: ts}
	}
	return s.PutSenderTimestamps(ctx, writes...)
}

// PutSenderTimestamps records sender timestamps, each its own, in one
// transaction of multi-row statements. A stored timestamp only ever moves
// forward (of several for one contact, the newest counts), and a zero one
// writes nothing.
func (s *Store) PutSenderTimestamps(ctx context.Context, writes ...SenderWrite) error {
	newest := make(map[string]int64, len(writes))
	order := make([]string, 0, len(writes))
	for i, w := range writes {
		if w.Contact.IsEmpty() {
			return fmt.Errorf("tctoken: sender timestamp #%d has no contact", i)
		} else if err := CheckContact(w.Contact); err != nil {
			return fmt.Errorf("tctoken: refusing sender timestamp #%d: %w", i, err)
		} else if w.TS < 0 {
			return fmt.Errorf("tctoken: refusing to store negative sender timestamp %d for %s", w.TS, contactKey(w.Contact))
		} else if w.TS == 0 {
			continue
		}
		key := contactKey(w.Contact)
		if prev, seen := newest[key]; !seen {
			order = append(order, key)
			newest[key] = w.TS
		} else if w.TS > prev {
			newest[key] = w.TS
		}
	}
	if len(order) == 0 {
		return nil
	}
	now := s.now()
	err := s.inTxnIfMany(ctx, len(order), func(ctx context.Context) error {
		for start := 0; start < len(order); start += putTokensChunk {
			keys := order[start:min(start+putTokensChunk, len(order))]
			var query string
			var args []any
			if s.db.Dialect == dbutil.Postgres {
				stamps := make([]int64, len(keys))
				for i, key := range keys {
					stamps[i] = newest[key]
				}
				query = fmt.Sprintf(putSenderTimestampsQuery, unnestSenderTimestampsSource)
				args = []any{s.ourJID, now, pgTextArray(keys), pgInt64Array(stamps)}
			} else {
				args = make([]any, 2, 2+2*len(keys))
				args[0], args[1] = s.ourJID, now
				for _, key := range keys {
					args = append(args, key, newest[key])
				}
				query = fmt.Sprintf(putSenderTimestampsQuery, "VALUES "+s.tuples(len(keys), 2, 3, ", $2"))
			}
			if _, err := s.db.Exec(ctx, query, args...); err != nil {
				return fmt.Errorf("failed to store the sender timestamps of %s: %w", nameContacts(keys), err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("tctoken: failed to store sender timestamps of %d contact(s) for %s: %w", len(order), s.ourJID, err)
	}
	return nil
}

// GetMany reads the rows of several keys of one contact (its LID and its
// PN) in a single query, in no particular order. The caller merges them: a
// row filed under the PN before the LID was known still holds a token.
//
// It is the cold read of every send, so it scans the rows itself rather
// than through dbutil's row iterator (which takes the caller's stack frame
// and sets a finalizer per query), and the query for up to three keys is
// built once.
func (s *Store) GetMany(ctx context.Context, contacts ...types.JID) ([]*Entry, error) {
	if len(contacts) == 0 {
		return nil, nil
	}
	args := make([]any, 1+len(contacts))
	args[0] = s.ourJIDArg
	for i, contact := range contacts {
		args[i+1] = contactKey(contact)
	}
	rows, err := s.db.Query(ctx, getEntriesQueryFor(len(contacts)), args...)
	var entries []*Entry
	if err == nil {
		entries, err = scanEntries(rows)
	}
	if err != nil {
		keys := make([]string, len(contacts))
		for i, contact := range contacts {
			keys[i] = contactKey(contact)
		}
		return nil, fmt.Errorf("tctoken: failed to get token of %s: %w", strings.Join(keys, " or "), err)
	}
	return entries, nil
}

// getEntriesQueries are getEntriesQuery for one, two and three keys.
var getEntriesQueries = func() (out [4]string) {
	for n := 1; n < len(out); n++ {
		out[n] = buildGetEntriesQuery(n)
	}
	return out
}()

func getEntriesQueryFor(n int) string {
	if n < len(getEntriesQueries) {
		return getEntriesQueries[n]
	}
	return buildGetEntriesQuery(n)
}

func buildGetEntriesQuery(n int) string {
	placeholders := make([]string, n)
	for i := range placeholders {
		placeholders[i] = fmt.Sprintf("$%d", i+2)
	}
	return fmt.Sprintf(getEntriesQuery, strings.Join(placeholders, ", "))
}

func scanEntries(rows dbutil.Rows) (entries []*Entry, err error) {
	defer func() {
		if closeErr := rows.Close(); err == nil {
			err = closeErr
		}
	}()
	for rows.Next() {
		entry, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		entries = append(entries, entry)
	}
	return entries, rows.Err()
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
	// One allocation for the entry and its scan targets, which escape
	// through Scan anyway.
	scan := &struct {
		entry             Entry
		contact           string
		tokenTS, senderTS sql.NullInt64
	}{}
	if err := row.Scan(&scan.contact, &scan.entry.Token, &scan.tokenTS, &scan.senderTS); err != nil {
		return nil, err
	}
	jid, err := types.ParseJID(scan.contact)
	if err != nil {
		return nil, fmt.Errorf("invalid contact %q in database: %w", scan.contact, err)
	}
	scan.entry.Contact = jid
	scan.entry.TokenTS = scan.tokenTS.Int64
	scan.entry.SenderTS = scan.senderTS.Int64
	return &scan.entry, nil
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
//
// Each statement deletes or clears at most PruneBatchSize rows and commits on
// its own: a prune in one transaction would hold SQLite's single write lock,
// which whatsmeow's session writes inside a send wait on, for as long as the
// whole prune runs. The rows are taken in index order (ORDER BY on the indexed
// column): without it PostgreSQL, estimating that half the table matches,
// picks a sequential scan for the LIMIT and reads every unexpired row before
// the first expired one, once per batch. For the same reason PostgreSQL gets
// the batch as an array (= ANY(ARRAY(...))), not as IN (subquery): it plans
// IN as a join against a sequential scan of the whole table, for every
// batch. (The README's Performance section has the figures.)
//
// Every statement checks its own conditions again in its outer WHERE, not
// only in the subquery that picks the batch. PostgreSQL computes the array
// once, on the statement's snapshot; a row that a concurrent write changed
// (a fresh token arriving while the prune runs) is waited for and then
// checked again, but only against the outer conditions. Without them there,
// the fresh token was deleted for the expired one it replaced. The checks
// are written with a unary plus (+token_ts, +sender_ts): a filter on each
// row of the batch, which keeps both planners from reading the outer rows
// through the expiry index instead of the batch's keys.
type pruneQueries struct {
	// Rows with nothing left worth keeping: no token, and no valid issuance.
	// Found by the partial index on rows without a token.
	senderOnly string
	// The two statements below work on the same batch: the first
	// PruneBatchSize expired tokens by token_ts (token_ts is NULL exactly
	// when token is, a CHECK says so, and $2 is at least 1, so a zero
	// token_ts counts as expired). The first clears the token of those rows
	// that keep a valid sender timestamp (or we would forget that we issued,
	// and issue again too early), which takes them out of the range; the
	// second deletes the other rows. So each batch reads about
	// PruneBatchSize index entries, however many expired tokens sit on rows
	// with a valid issuance.
	clearTokens, deleteRows string
}

func makePruneQueries(dialect dbutil.Dialect) pruneQueries {
	inBatch := func(batch string) string {
		if dialect == dbutil.Postgres {
			return "their_jid = ANY(ARRAY(" + batch + "))"
		}
		return "their_jid IN (" + batch + ")"
	}
	return pruneQueries{
		senderOnly: `DELETE FROM tctoken_tokens
			WHERE our_jid=$1 AND token IS NULL AND (+sender_ts IS NULL OR +sender_ts < $2) AND ` + inBatch(`
			SELECT their_jid FROM tctoken_tokens
			WHERE our_jid=$1 AND token IS NULL AND (sender_ts IS NULL OR sender_ts < $2)
			ORDER BY sender_ts LIMIT $3`),
		clearTokens: `UPDATE tctoken_tokens SET token=NULL, token_ts=NULL, updated_at=$4
			WHERE our_jid=$1 AND +token_ts < $2 AND +sender_ts >= $3 AND ` + inBatch(`
			SELECT their_jid FROM tctoken_tokens WHERE our_jid=$1 AND token_ts < $2
			ORDER BY token_ts LIMIT $5`),
		deleteRows: `DELETE FROM tctoken_tokens
			WHERE our_jid=$1 AND +token_ts < $2 AND (+sender_ts IS NULL OR +sender_ts < $3) AND ` + inBatch(`
			SELECT their_jid FROM tctoken_tokens WHERE our_jid=$1 AND token_ts < $2
			ORDER BY token_ts LIMIT $4`),
	}
}

var (
	pruneQueriesPostgres = makePruneQueries(dbutil.Postgres)
	pruneQueriesSQLite   = makePruneQueries(dbutil.SQLite)
)

// prunePlanSettings pins, for the rest of a prune batch's transaction on
// PostgreSQL, the plan that reads the batch in index order. Without fresh
// statistics (a table just filled by an import or a history sync, before
// autovacuum has analysed it) the planner guesses that about a thousand rows
// are expired, and sorts them all after a bitmap scan instead, for every
// batch: on a large table with many rows expired that makes each statement,
// and so the prune, many times slower (figures in the README's Performance
// section).
const prunePlanSettings = `SELECT set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true)`

// PruneBatchSize is how many rows one prune statement deletes or clears.
const PruneBatchSize = 1000

// lastBatch reports whether a prune batch that removed n rows was the last
// one. On SQLite, whose statements run alone, fewer than PruneBatchSize
// means there were no more. On PostgreSQL a batch also comes back short
// when a concurrent write changed some of its rows (they no longer pass the
// outer re-check), with more expired rows behind them; only an empty batch
// ends the prune there.
func (s *Store) lastBatch(n int64) bool {
	if s.db.Dialect == dbutil.Postgres {
		return n == 0
	}
	return n < PruneBatchSize
}

// Prune removes the tokens expired on the receiver side (token_ts <
// recvCutoff, or zero). A row whose sender timestamp is still valid (>=
// sendCutoff) keeps that timestamp and loses only the token; other rows go
// entirely, as do rows without a token whose sender timestamp has expired.
// It returns the number of tokens removed, not counting rows that held only
// a sender timestamp.
//
// It works in batches of PruneBatchSize, each statement committed on its
// own, so a large prune never holds the database for long. Interrupted (an
// error, a cancelled ctx, a crash), it leaves every row either pruned or as
// it was, and the next prune finishes the work.
//
// On SQLite it also pauses between batches, for three times as long as the
// batch held the write lock (at least minBatchPause). Short batches alone do
// not let a send in: a writer that finds the lock taken sleeps in SQLite's
// busy handler (1, 2, 5, 10 ms, ...) and retries only then, and batches
// committed back to back take the lock again before it wakes, so a send
// waited for the whole prune. With the pause, a waiting writer's next retry
// falls in it. In the pause it also checkpoints the WAL, so that the
// checkpoint does not fall inside a send's commit. On PostgreSQL, where a
// prune takes no lock a send waits on, it pauses as long as the batch took:
// on a machine with few cores the batches otherwise take the CPU the sends
// need. A prune with nothing to delete never pauses. The README's
// Performance section has what each of these changed.
func (s *Store) Prune(ctx context.Context, recvCutoff, sendCutoff int64) (int64, error) {
	recvCutoff = max(recvCutoff, 1)
	queries := pruneQueriesSQLite
	if s.db.Dialect == dbutil.Postgres {
		queries = pruneQueriesPostgres
	}
	exec := func(ctx context.Context, what, query string, args ...any) (int64, error) {
		res, err := s.db.Exec(ctx, query, args...)
		if err != nil {
			return 0, fmt.Errorf("tctoken: failed to prune tokens of %s: %s: %w", s.ourJID, what, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("tctoken: failed to prune tokens of %s: count rows (%s): %w", s.ourJID, what, err)
		}
		return n, nil
	}
	// batch runs one batch's statements: on SQLite each commits on its own;
	// on PostgreSQL they share a transaction that pins the plan (see
	// prunePlanSettings).
	batch := func(fn func(ctx context.Context) error) error {
		if s.db.Dialect != dbutil.Postgres {
			return fn(ctx)
		}
		return s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
			if _, err := s.db.Exec(ctx, prunePlanSettings); err != nil {
				return fmt.Errorf("tctoken: failed to prune tokens of %s: planner settings: %w", s.ourJID, err)
			}
			return fn(ctx)
		})
	}
	pause := func(held time.Duration) error {
		if err := s.pauseBetweenBatches(ctx, held, held, 3); err != nil {
			return fmt.Errorf("tctoken: prune of %s, pause between batches: %w", s.ourJID, err)
		}
		return nil
	}
	// Rows with no token left and an expired issuance. Deleted first so
	// that they are not counted as pruned tokens below.
	for {
		start := time.Now()
		var n int64
		err := batch(func(ctx context.Context) (err error) {
			n, err = exec(ctx, "delete expired sender timestamps", queries.senderOnly, s.ourJID, sendCutoff, PruneBatchSize)
			return err
		})
		if err != nil {
			return 0, err
		}
		if s.lastBatch(n) {
			break
		}
		if err = pause(time.Since(start)); err != nil {
			return 0, err
		}
	}
	var removed int64
	for {
		start := time.Now()
		var cleared, deleted int64
		err := batch(func(ctx context.Context) (err error) {
			if cleared, err = exec(ctx, "clear expired tokens", queries.clearTokens, s.ourJID, recvCutoff, sendCutoff, s.now(), PruneBatchSize); err != nil {
				return err
			}
			deleted, err = exec(ctx, "delete expired tokens", queries.deleteRows, s.ourJID, recvCutoff, sendCutoff, PruneBatchSize)
			return err
		})
		if err != nil {
			return removed, err
		}
		removed += cleared + deleted
		// The batch was the first PruneBatchSize expired tokens: the rows
		// cleared plus at least those of them deleted.
		if s.lastBatch(cleared + deleted) {
			break
		}
		if err = pause(time.Since(start)); err != nil {
			return removed, err
		}
	}
	return removed, nil
}
