package jobs

import (
	"context"
	"fmt"
	"time"
)

// OldestWaiting returns, for each of targets that has jobs waiting to be
// delivered (QUEUED or RETRYING), when the oldest of them was uploaded. It
// costs two probes of the (target, status, id) index per target, whatever
// the number of jobs waiting: ids are UUIDv7, so the smallest id of a
// status is its oldest job.
func (s *Store) OldestWaiting(ctx context.Context, targets []string) (map[string]time.Time, error) {
	rows, err := s.db.Query(ctx, `
		SELECT t.target, o.created_at
		FROM unnest($1::text[]) AS t(target)
		CROSS JOIN LATERAL (
			SELECT min(created_at) AS created_at FROM (
				(SELECT created_at FROM jobs WHERE target = t.target AND status = 'QUEUED' ORDER BY id LIMIT 1)
				UNION ALL
				(SELECT created_at FROM jobs WHERE target = t.target AND status = 'RETRYING' ORDER BY id LIMIT 1)
			) w
		) o
		WHERE o.created_at IS NOT NULL`, targets)
	if err != nil {
		return nil, fmt.Errorf("oldest waiting jobs: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var target string
		var at time.Time
		if err := rows.Scan(&target, &at); err != nil {
			return nil, fmt.Errorf("oldest waiting jobs: %w", err)
		}
		out[target] = at
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("oldest waiting jobs: %w", err)
	}
	return out, nil
}
