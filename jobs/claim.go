package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ClaimError says why a job could not be claimed, with what the caller
// needs to decide what to do with its queue message.
type ClaimError struct {
	Status Status
	// Blocked says the job is a version of a document whose older version
	// waits or runs: the job is claimable once that one is final, and its
	// message should come back soon, not be dropped. It is also set for a
	// job found claimable right after the claim failed: the older version
	// ended in between.
	Blocked bool
	// NotBefore is when the job may next be claimed: its next attempt time
	// when it waits for a retry, or the end of the lease of the worker that
	// holds it.
	NotBefore time.Time
}

func (e *ClaimError) Error() string {
	if e.Blocked {
		return fmt.Sprintf("job is %s, waiting for an older version of its document", e.Status)
	}
	return fmt.Sprintf("job is %s, not claimable before %s", e.Status, e.NotBefore.Format(time.RFC3339))
}

// Claim makes a QUEUED or RETRYING job whose time has come RUNNING, owned
// by owner (a token unique to this claim) until now+lease unless renewed, and
// records the attempt. It returns a *ClaimError when the job is in another
// state or not yet due, and ErrNotFound when there is no such job.
func (s *Store) Claim(ctx context.Context, id, owner string, lease time.Duration) (Job, error) {
	if !validID(id) {
		return Job{}, ErrNotFound
	}
	job, err := s.combinedJob(ctx, `
		WITH claimed AS (
			UPDATE jobs SET status = 'RUNNING', attempts = attempts + 1, lease_owner = $2,
				lease_expires_at = now() + $3 * interval '1 millisecond', updated_at = now()
			WHERE id = $1 AND status IN ('QUEUED', 'RETRYING') AND next_attempt_at <= now()
				AND NOT `+olderVersionPending+`
			RETURNING *
		), attempt AS (
			INSERT INTO attempts (job_id, number, worker, outcome)
			SELECT id, attempts, $2, 'RUNNING' FROM claimed
		)
		SELECT `+jobColumns+` FROM claimed`, id, owner, lease.Milliseconds())
	if err == nil {
		return job, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return Job{}, fmt.Errorf("claim %s: %w", id, err)
	}
	var ce ClaimError
	var next time.Time
	var leaseEnd *time.Time
	// Blocked, too, when the job is claimable now: the claim failed an
	// instant ago, so an older version of its document was pending and has
	// ended since. Its message must come back (the claim then succeeds);
	// acknowledged, it would leave the job QUEUED with no message, for
	// ever (the chaos run's versions mode met it).
	err = s.db.QueryRow(ctx, `SELECT status, next_attempt_at, lease_expires_at, `+olderVersionPending+`
			OR (status IN ('QUEUED', 'RETRYING') AND next_attempt_at <= now())
		FROM jobs WHERE id = $1`, id).Scan(&ce.Status, &next, &leaseEnd, &ce.Blocked)
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, fmt.Errorf("claim %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Job{}, fmt.Errorf("claim %s: %w", id, err)
	}
	switch {
	case ce.Status == StatusRunning && leaseEnd != nil:
		ce.NotBefore = *leaseEnd
	case ce.Status == StatusQueued || ce.Status == StatusRetrying:
		ce.NotBefore = next
	}
	return Job{}, fmt.Errorf("claim %s: %w", id, &ce)
}

// olderVersionPending is true of a job (of the table jobs) that is a
// version of a document whose older version waits or runs: versions go
// out one at a time, in order. An older version that waits is rare (a
// newer one supersedes it): one handed back at shutdown, say.
const olderVersionPending = `(jobs.document_id IS NOT NULL AND EXISTS (
	SELECT 1 FROM jobs o WHERE o.document_id = jobs.document_id AND o.version < jobs.version
		AND o.status IN ('QUEUED', 'RUNNING', 'RETRYING')))`

// ExtendLease renews the lease of owner on a RUNNING job. It returns
// ErrLeaseLost when owner no longer holds the job.
func (s *Store) ExtendLease(ctx context.Context, id, owner string, lease time.Duration) error {
	tag, err := s.db.Exec(ctx, `UPDATE jobs SET lease_expires_at = now() + $3 * interval '1 millisecond'
		WHERE id = $1 AND lease_owner = $2 AND status = 'RUNNING'`, id, owner, lease.Milliseconds())
	if err != nil {
		return fmt.Errorf("extend lease of %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("extend lease of %s: %w", id, ErrLeaseLost)
	}
	return nil
}

// SaveCheckpoint stores the progress of a multi-step delivery, if owner
// still holds the job.
func (s *Store) SaveCheckpoint(ctx context.Context, id, owner string, cp map[string]string) error {
	tag, err := s.db.Exec(ctx, `UPDATE jobs SET checkpoint = $3, updated_at = now()
		WHERE id = $1 AND lease_owner = $2 AND status = 'RUNNING'`, id, owner, cp)
	if err != nil {
		return fmt.Errorf("save checkpoint of %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("save checkpoint of %s: %w", id, ErrLeaseLost)
	}
	return nil
}

// Finish is the end of an attempt, as the worker decided it.
type Finish struct {
	// Status is the job's next status: SUCCESS, RETRYING, FAILED, or QUEUED
	// for a job handed back at shutdown.
	Status Status
	// Outcome is the attempt's outcome (OutcomeSuccess, ...).
	Outcome string
	// NextAttemptAt is when a RETRYING or QUEUED job may be claimed again.
	NextAttemptAt time.Time
	// Error is the failure, empty on success.
	Error string
	// HTTPStatus is the target's last HTTP status, if any.
	HTTPStatus int
	// RemoteID is the target's id for the document, on success.
	RemoteID string
	// Uncount makes the attempt not count against max_attempts: the
	// target, not the job, was at fault (its credentials were refused).
	Uncount bool
	// Uncertain, when set, says why the attempt repeated a creating step
	// whose earlier try may have landed unheard; it marks the attempt.
	Uncertain string
	// Remote is what the connector reported of the job's document, on
	// success: merged into the document's (an empty value removes a key).
	Remote map[string]string
}

// Finish ends the attempt of owner on job id. An attempt handed back
// (Status QUEUED) does not count against max_attempts.
func (s *Store) Finish(ctx context.Context, id, owner string, f Finish) (Job, error) {
	uncount := 0
	if f.Status == StatusQueued || f.Uncount {
		uncount = 1
	}
	next := f.NextAttemptAt
	if next.IsZero() {
		next = time.Now()
	}
	remote := f.Remote
	if remote == nil {
		remote = map[string]string{}
	}
	job, err := s.combinedJob(ctx, `
		WITH sup AS (
			-- a version that would wait for a retry while a newer one of its
			-- document exists is superseded: the newer one goes instead, and
			-- versions stay in order; unless this attempt or an earlier one
			-- may have reached the target (no answer, or uncertain): then it
			-- goes out again first (mayHaveLanded)
			SELECT $3 = 'RETRYING' AND coalesce($9::int, 0) > 0 AND coalesce($10::text, '') = ''
				AND EXISTS (SELECT 1 FROM jobs JOIN documents d ON d.id = jobs.document_id
					WHERE jobs.id = $1 AND d.versions > jobs.version AND NOT `+mayHaveLanded+`) AS superseded
		), j AS (
			UPDATE jobs SET status = CASE WHEN sup.superseded THEN 'SUPERSEDED' ELSE $3 END,
				attempts = attempts - $4, next_attempt_at = $5,
				last_error = CASE WHEN $3 = 'SUCCESS' THEN NULL WHEN $6 = '' THEN last_error ELSE $6 END,
				remote_id = coalesce(nullif($8, ''), remote_id),
				lease_owner = NULL, lease_expires_at = NULL, updated_at = now(),
				finished_at = CASE WHEN $3 IN ('SUCCESS', 'FAILED') OR sup.superseded THEN now() END,
				-- a retry is published by the sweeper when due; a job handed
				-- back at shutdown keeps its message (the worker naks it)
				enqueued_at = CASE WHEN $3 = 'QUEUED' THEN now() WHEN $3 = 'RETRYING' THEN NULL ELSE enqueued_at END
			FROM sup
			WHERE id = $1 AND lease_owner = $2 AND status = 'RUNNING'
			RETURNING jobs.*
		), d AS (
			UPDATE documents SET `+finishDocumentSet+`
			FROM j WHERE documents.id = j.document_id AND j.status = 'SUCCESS' AND j.version > documents.current_version
		), a AS (
			UPDATE attempts SET outcome = $7, finished_at = now(), http_status = nullif($9, 0), error = nullif($6, ''),
				uncertain = nullif($10, '')
			WHERE job_id = $1 AND outcome = 'RUNNING' AND EXISTS (SELECT 1 FROM j)
		)
		SELECT `+jobColumns+` FROM j`,
		id, owner, string(f.Status), uncount, next, f.Error, f.Outcome, f.RemoteID, f.HTTPStatus, f.Uncertain, remote)
	if errors.Is(err, ErrNotFound) {
		return Job{}, fmt.Errorf("finish %s: %w", id, ErrLeaseLost)
	}
	if err != nil {
		return Job{}, fmt.Errorf("finish %s: %w", id, err)
	}
	return job, nil
}

// finishDocumentSet is what a delivered version writes to its document:
// the connector's report merged into the remote identity (an empty value
// removes a key; a delete clears it, and a later version starts a new
// remote document), and the current version.
const finishDocumentSet = `
	remote = CASE WHEN j.op = 'delete' THEN '{}'::jsonb ELSE
		(SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb)
			FROM jsonb_each(documents.remote || $11::jsonb) AS e WHERE e.value <> '""'::jsonb) END,
	state = CASE WHEN j.op = 'delete' THEN 'deleted' ELSE 'active' END,
	current_version = j.version, current_sha256 = nullif(j.sha256, ''), current_size = j.size,
	current_job = j.id, updated_at = now()`

// RecoverExpired finds RUNNING jobs whose worker let the lease expire (it
// died or lost its connections), records their attempt as ABANDONED and makes
// them RETRYING, or FAILED when that was their last attempt. It returns the
// jobs to publish again.
func (s *Store) RecoverExpired(ctx context.Context, limit int) ([]Ref, error) {
	rows, err := s.db.Query(ctx, `
		WITH expired AS (
			SELECT id FROM jobs WHERE status = 'RUNNING' AND lease_expires_at < now()
			ORDER BY lease_expires_at LIMIT $1 FOR UPDATE SKIP LOCKED
		), j AS (
			UPDATE jobs SET
				-- never SUPERSEDED, even with a newer version of its
				-- document: the dead worker may have delivered it
				-- (mayHaveLanded), so it goes out again before the newer one
				status = CASE WHEN attempts >= max_attempts THEN 'FAILED' ELSE 'RETRYING' END,
				last_error = 'attempt ' || attempts || ': worker stopped responding (lease expired)',
				lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = now(), updated_at = now(),
				finished_at = CASE WHEN attempts >= max_attempts THEN now() END,
				enqueued_at = NULL
			FROM expired WHERE jobs.id = expired.id
			RETURNING jobs.id, jobs.target, jobs.status, jobs.updated_at, jobs.trace_parent
		), a AS (
			UPDATE attempts SET outcome = 'ABANDONED', finished_at = now(), error = 'worker stopped responding (lease expired)'
			WHERE job_id IN (SELECT id FROM j) AND outcome = 'RUNNING'
		)
		SELECT `+refColumns+` FROM j WHERE status = 'RETRYING'`, limit)
	if err != nil {
		return nil, fmt.Errorf("recover expired leases: %w", err)
	}
	return collectRefs(rows, "recover expired leases")
}

// mayHaveLanded is true of a job (of the table jobs) with an ended
// attempt that may have reached the target: one cut short (INTERRUPTED,
// ABANDONED), one that ended without an answer from the target (no HTTP
// status: a lost answer, a timeout, a connection cut), or one marked
// uncertain. Such a version is never SUPERSEDED, which promises that it
// was never delivered: it goes out again before the newer one (Claim
// blocks that one meanwhile), and its connector finds what the earlier
// attempt did, so the target gets each version once, in order. An attempt
// the target answered with a refusal (a 503, say) put nothing there.
const mayHaveLanded = `EXISTS (SELECT 1 FROM attempts a WHERE a.job_id = jobs.id AND a.outcome <> 'RUNNING'
	AND (a.outcome IN ('INTERRUPTED', 'ABANDONED') OR coalesce(a.http_status, 0) = 0 OR a.uncertain IS NOT NULL))`

// Unpublished returns jobs waiting for a worker that have no message in
// the queue by their row: retries whose wait is over and new jobs never
// published (the API could not reach the queue) older than grace. It
// changes nothing: the Enqueuer marks the jobs it publishes.
func (s *Store) Unpublished(ctx context.Context, grace time.Duration, limit int) ([]Ref, error) {
	rows, err := s.db.Query(ctx, `
		SELECT `+refColumns+` FROM jobs
		WHERE status IN ('QUEUED', 'RETRYING') AND next_attempt_at <= now() AND enqueued_at IS NULL
			AND (status = 'RETRYING' OR created_at < now() - $1 * interval '1 millisecond')
		ORDER BY next_attempt_at LIMIT $2`, grace.Milliseconds(), limit)
	if err != nil {
		return nil, fmt.Errorf("unpublished jobs: %w", err)
	}
	return collectRefs(rows, "unpublished jobs")
}

// publishedBeforeSQL pages by jobs.id: a bare "id" would name the id::text
// output column, and every page would sort all waiting jobs as text instead
// of walking the primary key (0.7 s a page at 1M jobs, so a rebuilt stream
// took hours to refill).
const publishedBeforeSQL = `
	SELECT ` + refColumns + ` FROM jobs
	WHERE status IN ('QUEUED', 'RETRYING') AND id > $2::uuid
		AND (enqueued_at < $1 OR (enqueued_at IS NULL AND next_attempt_at <= now()))
	ORDER BY jobs.id LIMIT $3`

// PublishedBefore returns, in id order after afterID, jobs waiting for a
// worker that were published before the time before, or due and not yet
// marked published: after the stream was lost and rebuilt, their messages
// may be gone. A due unmarked job may be one whose mark is deferred
// (EnqueueFresh) and lands after this pass went by it; it is published
// again here rather than left to a mark that says "published" of a message
// the lost stream took. (A retry not yet due has no message by design: the
// sweeper publishes it when due.) It changes nothing: the Enqueuer marks
// those it publishes again (enqueued_at moves past before).
func (s *Store) PublishedBefore(ctx context.Context, before time.Time, afterID string, limit int) ([]Ref, error) {
	if afterID == "" {
		afterID = "00000000-0000-0000-0000-000000000000"
	}
	rows, err := s.db.Query(ctx, publishedBeforeSQL, before, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("jobs published before %s: %w", before.Format(time.RFC3339), err)
	}
	return collectRefs(rows, "jobs published before")
}
