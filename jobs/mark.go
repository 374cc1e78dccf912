package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Published is a job put in the queue, and when: its mark records that
// time, not the time of the mark. After a lost stream the sweeper publishes
// again the jobs marked before the new stream was created; a mark deferred
// past that moment must still say "before".
type Published struct {
	Ref
	At time.Time
}

// MarkEnqueued records that the jobs of refs were published to the queue.
// A job is marked only if it has not changed since its Ref was read
// (Ref.Version): a fast worker may already have made it RETRYING, and the
// sweeper must then see it as unpublished when its wait is over. A job
// whose row is locked is being changed (claimed, most likely), so it is
// skipped rather than waited for: that change moves its version anyway, and
// a mark that waited on a claim that waits on it would deadlock.
func (s *Store) MarkEnqueued(ctx context.Context, refs ...Ref) error {
	ps := make([]Published, len(refs))
	now := time.Now()
	for i, r := range refs {
		ps[i] = Published{Ref: r, At: now}
	}
	return s.MarkPublished(ctx, ps)
}

// MarkPublished is MarkEnqueued with each job's time of publish, given as
// its age on this process's clock, so that enqueued_at stays on
// Postgres's.
func (s *Store) MarkPublished(ctx context.Context, ps []Published) error {
	ids := make([]string, len(ps))
	versions := make([]time.Time, len(ps))
	ages := make([]int64, len(ps))
	for i, p := range ps {
		ids[i], versions[i], ages[i] = p.ID, p.Version, max(0, time.Since(p.At).Milliseconds())
	}
	_, err := s.db.Exec(ctx, `
		UPDATE jobs SET enqueued_at = now() - m.age * interval '1 millisecond'
		FROM (
			SELECT jobs.id, r.age FROM jobs
			JOIN unnest($1::uuid[], $2::timestamptz[], $3::bigint[]) AS r(id, version, age) ON jobs.id = r.id
			WHERE jobs.updated_at = r.version AND jobs.status IN ('QUEUED', 'RETRYING')
			FOR UPDATE OF jobs SKIP LOCKED) AS m
		WHERE jobs.id = m.id`,
		ids, versions, ages)
	if err != nil {
		return fmt.Errorf("mark enqueued: %w", err)
	}
	return nil
}

// RefOf returns the Ref of a job just read or changed.
func RefOf(j Job) Ref {
	return Ref{ID: j.ID, Target: j.Target, Version: j.UpdatedAt, TraceParent: j.TraceParent}
}

// refColumns are what collectRefs scans.
const refColumns = `id::text, target, updated_at, coalesce(trace_parent, '')`

func collectRefs(rows pgx.Rows, what string) ([]Ref, error) {
	refs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Ref, error) {
		var ref Ref
		err := r.Scan(&ref.ID, &ref.Target, &ref.Version, &ref.TraceParent)
		return ref, err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return refs, nil
}
