package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The queries of the sweeper's repairs: the stored files of delivered jobs
// to remove, and which objects still have a job.

// TakeDeliveredObjects returns the object keys of jobs delivered (or
// superseded, issue 21) more than retention ago whose file is still stored,
// marking them removed: up to limit of each. The caller
// removes the objects; a failed removal leaves an orphan that costs only
// space, never a wrong delivery.
func (s *Store) TakeDeliveredObjects(ctx context.Context, retention time.Duration, limit int) ([]string, error) {
	rows, err := s.db.Query(ctx, `
		WITH delivered AS (
			SELECT id FROM jobs
			WHERE status = 'SUCCESS' AND object_deleted_at IS NULL
				AND finished_at < now() - $1 * interval '1 millisecond'
			ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED
		), superseded AS (
			-- versions of documents overtaken before they started
			SELECT id FROM jobs
			WHERE status = 'SUPERSEDED' AND object_deleted_at IS NULL
				AND finished_at < now() - $1 * interval '1 millisecond'
			ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED
		)
		UPDATE jobs SET object_deleted_at = now()
		WHERE id IN (SELECT id FROM delivered UNION ALL SELECT id FROM superseded)
		-- the delete of a document has no file
		RETURNING nullif(object_key, '')`, retention.Milliseconds(), limit)
	if err != nil {
		return nil, fmt.Errorf("take delivered objects: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[*string])
	if err != nil {
		return nil, fmt.Errorf("take delivered objects: %w", err)
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if k != nil {
			out = append(out, *k)
		}
	}
	return out, nil
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
