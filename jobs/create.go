package jobs

import (
	"context"
	"errors"
	"fmt"
)

// Creating one job outside an upload request (RecordRequest is the upload
// path), and finding a batch's job by its idempotency key.

// CreateWithPath records a new QUEUED job like Create, with the path the
// client gave for the file. A job of a batch scopes its idempotency key to
// the batch rather than to the API key: whoever sends the same key in the
// same batch gets the one job. It returns the existing job and
// created=false for a key already used.
func (s *Store) CreateWithPath(ctx context.Context, n New, clientPath string) (job Job, created bool, err error) {
	n = n.withDefaults()
	// No conflict target: either unique index (per API key, per batch)
	// may be the one a repeated key hits.
	row := s.db.QueryRow(ctx, `
		INSERT INTO jobs (id, target, batch, filename, content_type, size, sha256, object_key,
			params, status, max_attempts, idempotency_key, api_key_id, client_path, tenant)
		VALUES ($1, $2, nullif($3, ''), $4, $5, $6, $7, $8, $9, 'QUEUED', $10, nullif($11, ''), nullif($12, 0), nullif($13, ''), $14)
		ON CONFLICT DO NOTHING
		RETURNING `+jobColumns,
		n.ID, n.Target, n.Batch, n.Filename, n.ContentType, n.Size, n.SHA256, n.ObjectKey,
		n.Params, n.MaxAttempts, n.IdempotencyKey, n.APIKeyID, clientPath, n.Tenant)
	job, err = scanJob(row)
	if err == nil {
		return job, true, nil
	}
	if !errors.Is(err, ErrNotFound) || n.IdempotencyKey == "" {
		return Job{}, false, fmt.Errorf("create job: %w", err)
	}
	if n.Batch != "" {
		job, err = s.ByBatchKey(ctx, n.Tenant, n.Batch, n.IdempotencyKey)
		if !errors.Is(err, ErrNotFound) {
			return job, false, err
		}
	}
	job, err = s.ByIdempotencyKey(ctx, n.APIKeyID, n.IdempotencyKey)
	return job, false, err
}

// ByBatchKey returns the job of batch created with the idempotency key.
func (s *Store) ByBatchKey(ctx context.Context, tenant, batch, key string) (Job, error) {
	job, err := scanJob(s.db.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE tenant = $3 AND batch = $1 AND idempotency_key = $2`, batch, key, tenant))
	if err != nil {
		return Job{}, fmt.Errorf("job by batch key: %w", err)
	}
	return job, nil
}
