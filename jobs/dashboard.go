package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The figures the dashboard shows beyond a batch summary. Each query has
// its index (migration 007), and none costs more than what it reports:
// the last hour's finished jobs, a batch's failures, a batch's counts.

// FailureGroup is the FAILED jobs of a batch that failed for one reason.
type FailureGroup struct {
	// Group is the normalised error: what varies from file to file (ids,
	// quoted names, long numbers) replaced by placeholders.
	Group string
	// Example is one job's error as it was, and ExampleJob that job.
	Example    string
	ExampleJob string
	Count      int64
	FirstSeen  *time.Time
	LastSeen   *time.Time
}

// maxFailureGroups bounds how many groups FailureGroups returns, largest
// first.
const maxFailureGroups = 50

// FailureGroups returns the FAILED jobs of batch grouped by normalised
// error, largest group first (at most 50 groups). Every FAILED job has its
// group (a trigger sets it when the job fails), so the grouping reads only
// the jobs_batch_failures index.
func (s *Store) FailureGroups(ctx context.Context, tenant, batch string) ([]FailureGroup, error) {
	rows, err := s.db.Query(ctx, `
		WITH g AS (
			SELECT error_group AS grp, count(*) AS n, min(finished_at) AS first_at, max(finished_at) AS last_at
			FROM jobs WHERE batch = $1 AND status = 'FAILED' AND tenant = $3
			GROUP BY 1 ORDER BY n DESC, grp LIMIT $2
		)
		SELECT g.grp, g.n, g.first_at, g.last_at, e.id::text, coalesce(e.last_error, '')
		FROM g CROSS JOIN LATERAL (
			SELECT id, last_error FROM jobs
			WHERE batch = $1 AND status = 'FAILED' AND tenant = $3 AND error_group = g.grp
			ORDER BY finished_at DESC NULLS LAST LIMIT 1
		) e
		ORDER BY g.n DESC, g.grp`, batch, maxFailureGroups, tenant)
	if err != nil {
		return nil, fmt.Errorf("failure groups of batch %q: %w", batch, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (FailureGroup, error) {
		var g FailureGroup
		err := r.Scan(&g.Group, &g.Count, &g.FirstSeen, &g.LastSeen, &g.ExampleJob, &g.Example)
		return g, err
	})
	if err != nil {
		return nil, fmt.Errorf("failure groups of batch %q: %w", batch, err)
	}
	return out, nil
}

// ThroughputPoint is how many of a batch's jobs became final in one
// bucket of time.
type ThroughputPoint struct {
	// At is the bucket's start; Seconds its width: a minute for the last
	// minutes, ten minutes before (the folded counts keep no finer).
	At      time.Time
	Seconds int
	// Success and Failed are the jobs that became SUCCESS or FAILED in the
	// bucket (net of those that left it, a retried failure say), and
	// SuccessBytes their bytes.
	Success      int64
	SuccessBytes int64
	Failed       int64
}

// BatchThroughput returns the batch's deliveries over its life, oldest
// bucket first. It reads the folded counts, so its cost depends on the
// batch's age, not on its number of jobs.
func (s *Store) BatchThroughput(ctx context.Context, tenant, batch string) ([]ThroughputPoint, error) {
	if err := s.CompactBatchCounts(ctx, tenant, batch); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `
		SELECT b, CASE WHEN b >= date_trunc('minute', now() - $2 * interval '1 millisecond') THEN 60 ELSE 600 END,
			greatest(s, 0), greatest(sb, 0), greatest(f, 0)
		FROM (
			SELECT CASE WHEN bucket >= date_trunc('minute', now() - $2 * interval '1 millisecond') THEN bucket
				ELSE date_bin('10 minutes', bucket, timestamptz '2000-01-01') END AS b,
				coalesce(sum(files) FILTER (WHERE status = 'SUCCESS'), 0) AS s,
				coalesce(sum(bytes) FILTER (WHERE status = 'SUCCESS'), 0) AS sb,
				coalesce(sum(files) FILTER (WHERE status = 'FAILED'), 0) AS f
			FROM batch_counts WHERE tenant = $3 AND batch = $1 AND status IN ('SUCCESS', 'FAILED')
			GROUP BY 1
		) t ORDER BY b`, batch, recentBuckets.Milliseconds(), tenant)
	if err != nil {
		return nil, fmt.Errorf("throughput of batch %q: %w", batch, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ThroughputPoint, error) {
		var p ThroughputPoint
		err := r.Scan(&p.At, &p.Seconds, &p.Success, &p.SuccessBytes, &p.Failed)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("throughput of batch %q: %w", batch, err)
	}
	return out, nil
}

// TargetActivity is what one target did lately.
type TargetActivity struct {
	Target string
	// InFlight are its RUNNING jobs; Waiting its QUEUED and RETRYING ones
	// due now or earlier.
	InFlight int64
	// Delivered and Failed count the jobs that became SUCCESS or FAILED
	// within the window; RateLimited the attempts answered HTTP 429.
	Delivered   int64
	Failed      int64
	RateLimited int64
	// PerMinute are the deliveries of each minute of the window, oldest
	// first.
	PerMinute []int64
}

// Activity returns, for every target that had any, what happened in the
// window up to now (an hour for the dashboard), by minute, counting only
// the jobs in scope.
func (s *Store) Activity(ctx context.Context, scope Scope, window time.Duration) (map[string]*TargetActivity, error) {

	minutes := int(window / time.Minute)
	if minutes < 1 {
		minutes = 1
	}
	out := map[string]*TargetActivity{}
	get := func(t string) *TargetActivity {
		a := out[t]
		if a == nil {
			a = &TargetActivity{Target: t, PerMinute: make([]int64, minutes)}
			out[t] = a
		}
		return a
	}
	since := time.Now().Add(-time.Duration(minutes) * time.Minute).Truncate(time.Minute).Add(time.Minute)
	// Each query takes since as $1 and the scope's tenant after it.
	in, args := scope.query("tenant", since)
	rows, err := s.db.Query(ctx, `
		SELECT target, status, date_trunc('minute', finished_at), count(*)
		FROM jobs WHERE finished_at >= $1 AND status IN ('SUCCESS', 'FAILED') AND `+in+`
		GROUP BY 1, 2, 3`, args...)
	if err != nil {
		return nil, fmt.Errorf("target activity: %w", err)
	}
	var target, status string
	var minute time.Time
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&target, &status, &minute, &n}, func() error {
		a := get(target)
		if status == string(StatusFailed) {
			a.Failed += n
			return nil
		}
		a.Delivered += n
		if i := int(minute.Sub(since) / time.Minute); i >= 0 && i < minutes {
			a.PerMinute[i] += n
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("target activity: %w", err)
	}
	in, args = scope.query("tenant")
	rows, err = s.db.Query(ctx, `SELECT target, count(*) FROM jobs WHERE status = 'RUNNING' AND `+in+` GROUP BY 1`, args...)
	if err != nil {
		return nil, fmt.Errorf("jobs in flight: %w", err)
	}
	_, err = pgx.ForEachRow(rows, []any{&target, &n}, func() error { get(target).InFlight = n; return nil })
	if err != nil {
		return nil, fmt.Errorf("jobs in flight: %w", err)
	}
	in, args = scope.query("j.tenant", since)
	rows, err = s.db.Query(ctx, `
		SELECT j.target, count(*) FROM attempts a JOIN jobs j ON j.id = a.job_id
		WHERE a.http_status = 429 AND a.finished_at >= $1 AND `+in+` GROUP BY 1`, args...)
	if err != nil {
		return nil, fmt.Errorf("rate-limit answers: %w", err)
	}
	_, err = pgx.ForEachRow(rows, []any{&target, &n}, func() error { get(target).RateLimited = n; return nil })
	if err != nil {
		return nil, fmt.Errorf("rate-limit answers: %w", err)
	}
	return out, nil
}
