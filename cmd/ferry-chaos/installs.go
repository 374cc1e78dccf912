package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ferry-relay/ferry/internal/installation"
	"github.com/ferry-relay/ferry/queue"
)

// connectQueue connects to the jobs stream of the run's installation (its
// id is in the run's database).
func (c *cluster) connectQueue(ctx context.Context, name string) (*queue.Queue, error) {
	id, err := installation.ID(ctx, c.db)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
		id, err = "", nil // a ferry before installations (no table): FERRY_JOBS
	}
	if err != nil {
		return nil, err
	}
	q, err := queue.Connect(c.natsURL(), name)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return q, nil
	}
	if err := q.SetInstallation(id); err != nil {
		q.Close()
		return nil, err
	}
	return q, nil
}

// purgeStream drops every message of the jobs stream, keeping the stream,
// as an operator's purge does: the sweeper must see it and publish the
// waiting jobs again.
func (fs *faults) purgeStream(ctx context.Context, log *slog.Logger) error {
	q, err := fs.c.connectQueue(ctx, "chaos-purge")
	if err != nil {
		return err
	}
	defer q.Close()
	n, _ := q.Pending(ctx)
	if err := q.PurgeStream(ctx); err != nil {
		return nil // NATS down: nothing injected
	}
	fs.count(faultStreamPurge)
	log.Info("purged the jobs stream", "stream", q.StreamName(), "messages", n)
	return nil
}
