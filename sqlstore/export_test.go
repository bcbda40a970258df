package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"go.mau.fi/util/dbutil"
)

// ImportPlans returns the database's plans for the import's two statements
// on the key range (after, upper], as the import runs them: "bound",
// "batch" and "copy".
func (s *Store) ImportPlans(ctx context.Context, after, upper string) (map[string]string, error) {
	plans := make(map[string]string, 2)
	batch, copyQuery := importStatements(s.db.Dialect, importSenderColumn)
	for name, q := range map[string]struct {
		query string
		args  []any
	}{
		"bound": {importBoundQuery, []any{s.ourJID, after, ImportBatchSize}},
		"batch": {batch, []any{s.ourJID, after, upper, 0}},
		"copy":  {copyQuery, []any{s.ourJID, after, upper, 0, 1 << 40, 1024, 0}},
	} {
		var plan string
		err := s.importReadTxn(ctx, func(ctx context.Context) (err error) {
			plan, err = s.explain(ctx, q.query, q.args...)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("explain %s: %w", name, err)
		}
		plans[name] = plan
	}
	return plans, nil
}

// explain runs EXPLAIN QUERY PLAN (SQLite) or EXPLAIN (PostgreSQL) on query
// and returns the plan as text, one line per step.
func (s *Store) explain(ctx context.Context, query string, args ...any) (string, error) {
	prefix := "EXPLAIN QUERY PLAN "
	if s.db.Dialect == dbutil.Postgres {
		prefix = "EXPLAIN "
	}
	rows, err := s.db.Query(ctx, prefix+query, args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", err
	}
	var lines []string
	for rows.Next() {
		values := make([]any, len(cols))
		targets := make([]any, len(cols))
		for i := range values {
			targets[i] = &values[i]
		}
		if err := rows.Scan(targets...); err != nil {
			return "", err
		}
		lines = append(lines, fmt.Sprint(values[len(values)-1]))
	}
	return strings.Join(lines, "\n"), rows.Err()
}
