package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The queries of the sweeper's repairs: the stored files of delivered jobs
// to remove, and which objects still have a job.

// TakeDeliveredObjects returns the object keys of jobs delivered more than
// retention ago whose file is still stored, marking them removed. The caller
// removes the objects; a failed removal leaves an orphan that costs only
// space, never a wrong delivery.
func (s *Store) TakeDeliveredObjects(ctx context.Context, retention time.Duration, limit int) ([]string, error) {
	rows, err := s.db.Query(ctx, `
		UPDATE jobs SET object_deleted_at = now()
		WHERE id IN (
			SELECT id FROM jobs
			WHERE status = 'SUCCESS' AND object_deleted_at IS NULL
				AND finished_at < now() - $1 * interval '1 millisecond'
			ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED)
		RETURNING object_key`, retention.Milliseconds(), limit)
	if err != nil {
		return nil, fmt.Errorf("take delivered objects: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("take delivered objects: %w", err)
	}
	return keys, nil
}

// ExistingIDs returns which of ids are jobs.
func (s *Store) ExistingIDs(ctx context.Context, ids []string) (map[string]bool, error) {
	var valid []string
	for _, id := range ids {
		if validID(id) {
			valid = append(valid, id)
		}
	}
	rows, err := s.db.Query(ctx, `SELECT id::text FROM jobs WHERE id = ANY($1::uuid[])`, valid)
	if err != nil {
		return nil, fmt.Errorf("existing jobs: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("existing jobs: %w", err)
	}
	out := make(map[string]bool, len(found))
	for _, id := range found {
		out[id] = true
	}
	return out, nil
}
