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
}

// stmt returns query prepared on the pool, preparing it on first use.
func (p *preparedStatements) stmt(ctx context.Context, db *sql.DB, query string) (*sql.Stmt, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if stmt, ok := p.stmts[query]; ok {
		return stmt, nil
	}
	stmt, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if p.stmts == nil {
		p.stmts = make(map[string]*sql.Stmt)
	}
	p.stmts[query] = stmt
	return stmt, nil
}

// preparedFor returns query prepared, bound to the transaction in ctx if
// there is one; ok is false when the statement cannot be run prepared (a
// transaction or connection dbutil does not expose), and the caller runs
// it the usual way.
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
	stmt, err := s.c.prepared.stmt(ctx, s.db.RawDB, query)
	if err != nil {
		// Run it unprepared: its error, if it has one, is reported there.
		return nil, false
	}
	if tx != nil {
		// Reuses the statement already prepared on the transaction's
		// connection, or prepares it there once.
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
