package jobs

import (
	"context"
	"fmt"
	"strings"
)

// RequeueFilter selects the FAILED jobs to put back in the queue. Empty
// fields match every job; the caller decides whether an empty filter (every
// FAILED job) is what was meant.
type RequeueFilter struct {
	Target string
	Batch  string
	// Error matches jobs whose last error contains it, ignoring case.
	Error string
	// ErrorGroup, when set, matches the jobs of one failure group
	// (FailureGroups) exactly.
	ErrorGroup *string
}

// Empty reports whether f matches every FAILED job.
func (f RequeueFilter) Empty() bool {
	return f.Target == "" && f.Batch == "" && f.Error == "" && f.ErrorGroup == nil
}

// requeueChunk is how many jobs one statement re-queues: small enough to
// keep row locks short, large enough to re-queue a million in seconds.
const requeueChunk = 2000

// RequeueFailed puts every FAILED job matching f back in the queue, as
// Retry does for one: QUEUED, attempts counted from zero, last error kept
// until the next attempt. It works through the matching jobs in chunks,
// newest first, and calls chunk with each chunk's jobs, which are not
// yet published (enqueued_at is NULL, so the sweeper publishes those the
// caller does not). It returns how many jobs it re-queued.
//
// Across tenants without a target, it works tenant by tenant: each walk is
// then one range of the (tenant, status, id) index (list.go).
func (s *Store) RequeueFailed(ctx context.Context, scope Scope, f RequeueFilter, chunk func([]Ref)) (int, error) {
	if scope.All() && f.Target == "" {
		tenants, err := s.tenants(ctx)
		if err != nil {
			return 0, fmt.Errorf("re-queue failed jobs: %w", err)
		}
		total := 0
		for _, t := range tenants {
			n, err := s.requeueFailed(ctx, InTenant(t), f, chunk)
			total += n
			if err != nil {
				return total, err
			}
		}
		return total, nil
	}
	return s.requeueFailed(ctx, scope, f, chunk)
}

// requeueFailed is RequeueFailed within one index range: one tenant, or one
// target.
func (s *Store) requeueFailed(ctx context.Context, scope Scope, f RequeueFilter, chunk func([]Ref)) (int, error) {
	args := []any{}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	where := append([]string{"status = 'FAILED'",
		// a version of a document goes again only while it is the latest
		"(document_id IS NULL OR jobs.id = (SELECT latest_job FROM documents d WHERE d.id = jobs.document_id))"},
		scopeTargetBatch(scope, f.Target, f.Batch, arg)...)
	if f.Error != "" {
		where = append(where, "strpos(lower(coalesce(last_error, '')), lower("+arg(f.Error)+")) > 0")
	}
	if f.ErrorGroup != nil {
		where = append(where, "error_group = "+arg(*f.ErrorGroup))
	}
	// Keyset on id: each chunk starts below the last one, so jobs that do
	// not match the error are read once, not once per chunk.
	cursor := arg("ffffffff-ffff-ffff-ffff-ffffffffffff")
	where = append(where, "jobs.id < "+cursor+"::uuid")
	limit := arg(requeueChunk)
	q := `
		WITH picked AS (
			SELECT id FROM jobs WHERE ` + strings.Join(where, " AND ") + `
			ORDER BY id DESC LIMIT ` + limit + ` FOR UPDATE SKIP LOCKED
		)
		UPDATE jobs SET status = 'QUEUED', attempts = 0, next_attempt_at = now(),
			finished_at = NULL, enqueued_at = NULL, updated_at = now()
		FROM picked WHERE jobs.id = picked.id
		RETURNING jobs.id::text, jobs.target, jobs.updated_at, coalesce(jobs.trace_parent, '')`
	total := 0
	for {
		rows, err := s.db.Query(ctx, q, args...)
		if err != nil {
			return total, fmt.Errorf("re-queue failed jobs: %w", err)
		}
		refs, err := collectRefs(rows, "re-queue failed jobs")
		if err != nil {
			return total, err
		}
		total += len(refs)
		if len(refs) > 0 && chunk != nil {
			chunk(refs)
		}
		if len(refs) < requeueChunk {
			return total, nil
		}
		// Ids are fixed-width lowercase hex: text order is uuid order.
		low := refs[0].ID
		for _, r := range refs {
			low = min(low, r.ID)
		}
		args[len(args)-2] = low
	}
}
