package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store keeps jobs and their attempts in Postgres.
type Store struct {
	db *pgxpool.Pool
	// writes combines the hot single-row writes of concurrent callers
	// (combine.go).
	writes *combiner
}

// NewStore returns a store over a connection pool whose schema is migrated.
func NewStore(db *pgxpool.Pool) *Store { return &Store{db: db, writes: newCombiner(db)} }

// combinedJob runs a statement returning jobColumns through the combiner.
func (s *Store) combinedJob(ctx context.Context, sql string, args ...any) (Job, error) {
	var job Job
	err := s.writes.queryRow(ctx, sql, args, func(r pgx.Row) error {
		j, err := scanJob(r)
		job = j
		if errors.Is(err, ErrNotFound) {
			return pgx.ErrNoRows
		}
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, ErrNotFound
	}
	return job, err
}

const jobColumns = `id::text, target, coalesce(batch, ''), filename, content_type, size, sha256,
	object_key, params, status, attempts, max_attempts, next_attempt_at, coalesce(last_error, ''),
	coalesce(remote_id, ''), checkpoint, coalesce(idempotency_key, ''), coalesce(api_key_id, 0),
	coalesce(lease_owner, ''), lease_expires_at, created_at, updated_at, finished_at, tenant,
	coalesce(document_id::text, ''), coalesce(version, 0), op,
	CASE WHEN document_id IS NULL THEN '' ELSE
		coalesce((SELECT d.key FROM documents d WHERE d.id = document_id), '') END,
	coalesce(trace_parent, '')`

func scanJob(row pgx.Row) (Job, error) {
	var j Job
	var next time.Time
	err := row.Scan(&j.ID, &j.Target, &j.Batch, &j.Filename, &j.ContentType, &j.Size, &j.SHA256,
		&j.ObjectKey, &j.Params, &j.Status, &j.Attempts, &j.MaxAttempts, &next, &j.LastError,
		&j.RemoteID, &j.Checkpoint, &j.IdempotencyKey, &j.APIKeyID,
		&j.LeaseOwner, &j.LeaseExpiresAt, &j.CreatedAt, &j.UpdatedAt, &j.FinishedAt, &j.Tenant,
		&j.DocumentID, &j.Version, &j.Op, &j.DocumentKey, &j.TraceParent)
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, ErrNotFound
	}
	if err != nil {
		return Job{}, err
	}
	if j.Status == StatusQueued || j.Status == StatusRetrying {
		j.NextAttemptAt = &next
	}
	return j, nil
}

// Create records a new QUEUED job. With an idempotency key already used by
// the same API key, it returns the existing job and created=false instead.
func (s *Store) Create(ctx context.Context, n New) (job Job, created bool, err error) {
	n = n.withDefaults()
	row := s.db.QueryRow(ctx, `
		INSERT INTO jobs (id, target, batch, filename, content_type, size, sha256, object_key,
			params, status, max_attempts, idempotency_key, api_key_id, tenant)
		VALUES ($1, $2, nullif($3, ''), $4, $5, $6, $7, $8, $9, 'QUEUED', $10, nullif($11, ''), nullif($12, 0), $13)
		ON CONFLICT ((coalesce(api_key_id, 0)), idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
		RETURNING `+jobColumns,
		n.ID, n.Target, n.Batch, n.Filename, n.ContentType, n.Size, n.SHA256, n.ObjectKey,
		n.Params, n.MaxAttempts, n.IdempotencyKey, n.APIKeyID, n.Tenant)
	job, err = scanJob(row)
	if errors.Is(err, ErrNotFound) && n.IdempotencyKey != "" {
		job, err = s.ByIdempotencyKey(ctx, n.APIKeyID, n.IdempotencyKey)
		return job, false, err
	}
	if err != nil {
		return Job{}, false, fmt.Errorf("create job: %w", err)
	}
	return job, true, nil
}

// ByIdempotencyKey returns the job created with key by the API key apiKeyID.
func (s *Store) ByIdempotencyKey(ctx context.Context, apiKeyID int64, key string) (Job, error) {
	job, err := scanJob(s.db.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE api_key_id IS NOT DISTINCT FROM nullif($1, 0) AND idempotency_key = $2`, apiKeyID, key))
	if err != nil {
		return Job{}, fmt.Errorf("job by idempotency key: %w", err)
	}
	return job, nil
}

// Get returns the job with id, or ErrNotFound when there is none in scope:
// another tenant's job is not found.
func (s *Store) Get(ctx context.Context, scope Scope, id string) (Job, error) {
	if !validID(id) {
		return Job{}, ErrNotFound
	}
	args := []any{id}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	job, err := scanJob(s.db.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1 AND `+scope.sql("tenant", arg), args...))
	if err != nil {
		return Job{}, fmt.Errorf("job %s: %w", id, err)
	}
	return job, nil
}

// Attempts returns every attempt at job id, oldest first.
func (s *Store) Attempts(ctx context.Context, scope Scope, id string) ([]Attempt, error) {
	if _, err := s.Get(ctx, scope, id); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `
		SELECT number, worker, started_at, finished_at, outcome, coalesce(http_status, 0), coalesce(error, ''),
			coalesce((extract(epoch FROM finished_at - started_at) * 1000)::bigint, 0), coalesce(uncertain, '')
		FROM attempts WHERE job_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("attempts of %s: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Attempt, error) {
		var a Attempt
		err := r.Scan(&a.Number, &a.Worker, &a.StartedAt, &a.FinishedAt, &a.Outcome, &a.HTTPStatus, &a.Error, &a.DurationMS, &a.Uncertain)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("attempts of %s: %w", id, err)
	}
	return out, nil
}

// Retry puts a FAILED (or CANCELED) job back in the queue with its attempts
// counted from zero. It returns ErrConflict for a job in any other state.
func (s *Store) Retry(ctx context.Context, scope Scope, id string) (Job, error) {
	return s.transition(ctx, scope, id, `UPDATE jobs SET status = 'QUEUED', attempts = 0, next_attempt_at = now(),
		finished_at = NULL, enqueued_at = NULL, updated_at = now()
		WHERE id = $1 AND status IN ('FAILED', 'CANCELED') AND %s
			-- a version of a document goes again only while it is the latest
			AND (document_id IS NULL OR id = (SELECT latest_job FROM documents d WHERE d.id = jobs.document_id))
		RETURNING `+jobColumns)
}

// Cancel stops a QUEUED or RETRYING job. It returns ErrConflict for a job in
// any other state.
func (s *Store) Cancel(ctx context.Context, scope Scope, id string) (Job, error) {
	return s.transition(ctx, scope, id, `UPDATE jobs SET status = 'CANCELED', finished_at = now(), updated_at = now()
		WHERE id = $1 AND status IN ('QUEUED', 'RETRYING') AND %s RETURNING `+jobColumns)
}

func (s *Store) transition(ctx context.Context, scope Scope, id, q string) (Job, error) {
	if !validID(id) {
		return Job{}, ErrNotFound
	}
	args := []any{id}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	job, err := scanJob(s.db.QueryRow(ctx, fmt.Sprintf(q, scope.sql("tenant", arg)), args...))
	if errors.Is(err, ErrNotFound) {
		if _, gerr := s.Get(ctx, scope, id); gerr != nil {
			return Job{}, gerr
		}
		return Job{}, fmt.Errorf("job %s: %w", id, ErrConflict)
	}
	if err != nil {
		return Job{}, fmt.Errorf("job %s: %w", id, err)
	}
	return job, nil
}

// validID reports whether s looks like a UUID, so that a malformed id is a
// 404 rather than a Postgres error.
// withDefaults fills what a new job may leave empty.
func (n New) withDefaults() New {
	if n.Params == nil {
		n.Params = map[string]string{}
	}
	if n.Tenant == "" {
		n.Tenant = TenantDefault
	}
	return n
}

func validID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return true
}

// likeEscaper escapes LIKE's wildcards and its escape character.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
