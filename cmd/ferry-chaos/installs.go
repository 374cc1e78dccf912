package main

import (
	"context"

	"github.com/ferry-relay/ferry/internal/installation"
	"github.com/ferry-relay/ferry/queue"
)

// connectQueue connects to the jobs stream of the run's installation (its
// id is in the run's database).
func (c *cluster) connectQueue(ctx context.Context, name string) (*queue.Queue, error) {
	id, err := installation.ID(ctx, c.db)
	if err != nil {
		return nil, err
	}
	q, err := queue.Connect(c.natsURL(), name)
	if err != nil {
		return nil, err
	}
	if err := q.SetInstallation(id); err != nil {
		q.Close()
		return nil, err
	}
	return q, nil
}
