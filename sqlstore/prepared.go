package sqlstore

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"go.mau.fi/util/dbutil"
)

// Prepared statements for the token writes. database/sql prepares a
// statement run with arguments on every call: SQLite parses and compiles
// the upsert (its rule written out, the JSON or VALUES row source) each
// time, which for a single token took longer than running it, and
// PostgreSQL (lib/pq) spends a round trip on the parse before the one that
// runs it. A statement prepared once per connection and kept saves both.
// Only statements whose text never changes go through here: the JSON and
// array forms of the batch writes.
//
// The statements bypass dbutil's wrapper, so they are reported to its
// logger here, the way the wrapper would report them (query timing, the
// arguments redacted as they are there).

// preparedStatements holds the statements prepared on a container's pool.
type preparedStatements struct {
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
	// pending are the statements being prepared in the background.
	pending map[string]bool
}

// prepareTimeout bounds a background prepare's wait for a connection.
const prepareTimeout = 30 * time.Second

// stmt returns query prepared on the pool. Outside a transaction it
// prepares it on first use. Inside one it never does: preparing takes a
// connection of the pool, and a caller holding the transaction's
// connection would wait for a second one, which a pool of one never has.
// There it starts the prepare in the background, where it waits for a free
// connection, and the caller runs the statement unprepared this time (ok
// false).
func (p *preparedStatements) stmt(ctx context.Context, db *sql.DB, query string, inTxn bool) (*sql.Stmt, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if stmt, ok := p.stmts[query]; ok {
		return stmt, true
	}
	if inTxn {
		if !p.pending[query] {
			if p.pending == nil {
				p.pending = make(map[string]bool)
			}
			p.pending[query] = true
			go p.prepare(db, query)
		}
		return nil, false
	}
	stmt, err := db.PrepareContext(ctx, query)
	if err != nil {
		// Run it unprepared: its error, if it has one, is reported there.
		return nil, false
	}
	p.add(query, stmt)
	return stmt, true
}

// prepare prepares query on the pool in the background (see stmt).
func (p *preparedStatements) prepare(db *sql.DB, query string) {
	ctx, cancel := context.WithTimeout(context.Background(), prepareTimeout)
	defer cancel()
	stmt, err := db.PrepareContext(ctx, query)
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.pending, query)
	if err == nil {
		p.add(query, stmt)
	}
}

// add keeps stmt for query; p.mu is held.
func (p *preparedStatements) add(query string, stmt *sql.Stmt) {
	if _, ok := p.stmts[query]; ok {
		_ = stmt.Close() // prepared meanwhile: the first stays
		return
	}
	if p.stmts == nil {
		p.stmts = make(map[string]*sql.Stmt)
	}
	p.stmts[query] = stmt
}

// preparedFor returns query prepared, bound to the transaction in ctx if
// there is one; ok is false when the statement is to run the usual way
// this time (a transaction or connection dbutil does not expose, or not
// prepared yet inside a transaction).
func (s *Store) preparedFor(ctx context.Context, query string) (stmt *sql.Stmt, ok bool) {
	var tx *sql.Tx
	switch ex := s.db.Execable(ctx).(type) {
	case *dbutil.LoggingTxn:
		tx = ex.UnderlyingTx
	default:
		if ex != dbutil.Execable(&s.db.LoggingDB) || s.db.LoggingDB.UnderlyingExecable != dbutil.UnderlyingExecable(s.db.RawDB) {
			return nil, false
		}
	}
	if stmt, ok = s.c.prepared.stmt(ctx, s.db.RawDB, query, tx != nil); !ok {
		return nil, false
	}
	if tx != nil {
		// Runs on the transaction's connection: the statement already
		// prepared there, or prepared there once.
		stmt = tx.StmtContext(ctx, stmt)
	}
	return stmt, true
}

// queryPrepared is s.db.Query for a statement whose text never changes.
func (s *Store) queryPrepared(ctx context.Context, query string, args ...any) (dbutil.Rows, error) {
	stmt, ok := s.preparedFor(ctx, query)
	if !ok {
		return s.db.Query(ctx, query, args...)
	}
	start := time.Now()
	rows, err := stmt.QueryContext(ctx, args...)
	s.db.Log.QueryTiming(ctx, "Query", query, args, -1, time.Since(start), err)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// execPrepared is s.db.Exec for a statement whose text never changes.
func (s *Store) execPrepared(ctx context.Context, query string, args ...any) (sql.Result, error) {
	stmt, ok := s.preparedFor(ctx, query)
	if !ok {
		return s.db.Exec(ctx, query, args...)
	}
	start := time.Now()
	res, err := stmt.ExecContext(ctx, args...)
	s.db.Log.QueryTiming(ctx, "Exec", query, args, -1, time.Since(start), err)
	return res, err
}
