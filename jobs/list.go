package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Listings and the indexes they walk.
//
// Every row version of a job enters every index on jobs that does not
// exclude it, and a job has three (recorded, claimed, finished): each index
// is paid for on every upload. So jobs carry the ordered indexes that
// listings need and no more (migration 008): the primary key (newest first
// over everything), (tenant, status, id) and (target, status, id), plus the
// batch indexes. A listing that names no status, for one tenant or one
// target, walks the status-keyed index once per status and merges the
// walks; an administrator's listing of one status (or one batch) across
// tenants walks once per tenant. Each walk stops after one page, so a page
// costs the same at any depth and any size of the table
// (TestListReadsAPagePerWalk counts the rows Postgres reads; the dashboard
// benchmark times the pages at a million jobs). Dropping jobs_status_id,
// jobs_target_id and jobs_tenant_id took a fifth off the WAL each job
// writes (4.6 to 3.7 KB) and a tenth off its statements' time in Postgres.

// ErrInvalidCursor means a listing's cursor is not one a listing gave: the
// caller's mistake, never the store's.
var ErrInvalidCursor = errors.New("invalid cursor")

// fanOut is how a listing reaches its index.
type fanOut int

const (
	// walkOne: one index serves the filter as it is.
	walkOne fanOut = iota
	// walkPerStatus: one walk of a status-keyed index per status.
	walkPerStatus
	// walkPerTenant: one walk per tenant that has jobs.
	walkPerTenant
)

// fanOutOf picks how a listing of scope and f walks its index.
func fanOutOf(scope Scope, f Filter) fanOut {
	switch {
	case f.FilenameContains != "":
		return walkOne // the trigram index, then a sort of what it found
	case scope.All() && f.Target == "" && (f.Status != "" || f.Batch != ""):
		return walkPerTenant // (tenant, status, id) or (tenant, batch, …)
	case f.Status == "" && f.Batch == "" && (!scope.All() || f.Target != ""):
		return walkPerStatus
	default:
		return walkOne // the primary key, or an index keyed on what is set
	}
}

// tenantsCTE lists the tenants that have jobs, one index probe each (a
// loose scan of (tenant, status, id)), as rows of tenants(name).
const tenantsCTE = `WITH RECURSIVE tenants(name) AS (
		(SELECT tenant FROM jobs ORDER BY tenant LIMIT 1)
		UNION ALL
		SELECT (SELECT j.tenant FROM jobs j WHERE j.tenant > t.name ORDER BY j.tenant LIMIT 1)
		FROM tenants t WHERE t.name IS NOT NULL)
	`

// scopeTargetBatch returns the conditions that keep a query of jobs in
// scope and, when they are set, on one target and in one batch.
func scopeTargetBatch(scope Scope, target, batch string, arg func(any) string) []string {
	var where []string
	if !scope.All() {
		where = append(where, scope.sql("tenant", arg))
	}
	if target != "" {
		where = append(where, "target = "+arg(target))
	}
	if batch != "" {
		where = append(where, "batch = "+arg(batch))
	}
	return where
}

// listSQL returns the statement and arguments of one page of List; tenants
// are the tenants that have jobs, needed only by a walk per tenant.
func listSQL(scope Scope, f Filter, tenants []string) (string, []any, error) {
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	where := scopeTargetBatch(scope, f.Target, f.Batch, arg)
	if f.Uncertain {
		where = append(where, "EXISTS (SELECT 1 FROM attempts a WHERE a.job_id = jobs.id AND a.uncertain IS NOT NULL)")
	}
	if f.FilenameContains != "" {
		// ILIKE, so that the trigram index serves it; the pattern's own
		// wildcards are escaped.
		where = append(where, "filename ILIKE "+arg("%"+likeEscaper.Replace(f.FilenameContains)+"%"))
	}
	if f.Cursor != "" {
		if !validID(f.Cursor) {
			return "", nil, fmt.Errorf("list jobs: cursor %q: %w", f.Cursor, ErrInvalidCursor)
		}
		where = append(where, "jobs.id < "+arg(f.Cursor))
	}
	// jobs.id, not id: the select list's id is id::text, and ORDER BY
	// would sort by that text, which no index serves.
	limit := arg(f.Limit + 1)
	page := func(columns string, where []string, order string) string {
		q := `SELECT ` + columns + ` FROM jobs`
		if len(where) > 0 {
			q += " WHERE " + strings.Join(where, " AND ")
		}
		return q + " ORDER BY " + order + " LIMIT " + limit
	}
	// Several walks: each a branch of a UNION ALL that stops after one
	// page; the outer query merges them and keeps the newest page.
	//
	// A walk names its status as a range of one value, and orders by it:
	// with "status = 'SUCCESS'" the planner may walk the primary key
	// instead and filter, guessing from the column's statistics that
	// SUCCESS rows are everywhere; when the newest jobs are all waiting
	// (a batch in retry), that walk reads every one of them. A range
	// does not make the status a constant, so only an index keyed on
	// (…, status, id) gives the order asked, and every walk reads one
	// page of it.
	walk := func(columns string, status Status, more ...string) string {
		w := append(append([]string(nil), where...), more...)
		if status == "" {
			return page(columns, w, "jobs.id DESC")
		}
		st := arg(string(status))
		return page(columns, append(w, "jobs.status BETWEEN "+st+" AND "+st), "jobs.status, jobs.id DESC")
	}
	var walks []string
	switch fanOutOf(scope, f) {
	case walkPerStatus:
		for _, st := range Statuses {
			walks = append(walks, walk("*", st))
		}
	case walkPerTenant:
		for _, t := range tenants {
			walks = append(walks, walk("*", f.Status, "jobs.tenant = "+arg(t)))
		}
		if len(walks) == 0 {
			walks = append(walks, walk("*", f.Status, "false"))
		}
	default:
		if f.FilenameContains != "" && f.Status != "" {
			// The trigram index finds the rows; no walk to steer.
			return page(jobColumns, append(where, "status = "+arg(string(f.Status))), "jobs.id DESC"), args, nil
		}
		return walk(jobColumns, f.Status), args, nil
	}
	return `SELECT ` + jobColumns + ` FROM ((` + strings.Join(walks, ") UNION ALL (") + `)) AS jobs
		ORDER BY jobs.id DESC LIMIT ` + limit, args, nil
}

// List returns jobs matching f, newest first, and the cursor of the next
// page ("" on the last page). Paging is by keyset on the time-ordered id, so
// a page costs the same at any depth. A cursor that is not a job id is
// ErrInvalidCursor, found before the store is asked anything.
func (s *Store) List(ctx context.Context, scope Scope, f Filter) ([]Job, string, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	if f.Cursor != "" && !validID(f.Cursor) {
		return nil, "", fmt.Errorf("list jobs: cursor %q: %w", f.Cursor, ErrInvalidCursor)
	}
	var tenants []string
	if fanOutOf(scope, f) == walkPerTenant {
		var err error
		if tenants, err = s.tenants(ctx); err != nil {
			return nil, "", fmt.Errorf("list jobs: %w", err)
		}
	}
	q, args, err := listSQL(scope, f, tenants)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list jobs: %w", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list jobs: %w", err)
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		next = out[len(out)-1].ID
	}
	return out, next, nil
}

// tenants returns the tenants that have jobs, in name order.
func (s *Store) tenants(ctx context.Context) ([]string, error) {
	rows, err := s.db.Query(ctx, tenantsCTE+`SELECT name FROM tenants WHERE name IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("tenants with jobs: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("tenants with jobs: %w", err)
	}
	return out, nil
}
