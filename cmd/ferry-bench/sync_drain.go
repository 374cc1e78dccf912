package main

import (
	"context"
	"fmt"
	"time"
)

// syncDrainWait is how long the first sync's deliveries are waited for
// before the rest is cancelled.
const syncDrainWait = time.Minute

// drain waits up to syncDrainWait for ferry to deliver the first sync's
// jobs, so that the figures after it neither share the CPU with those
// deliveries nor queue their changes behind them. What is left then is
// cancelled in the database (the UPDATE of POST /v1/jobs/{id}/cancel)
// with ferry stopped, and ferry started again on the same address: its
// stream is rebuilt from Postgres without the cancelled jobs. The first
// sync's deliveries are the e2e figures' business, not this scenario's.
func (s *syncBench) drain(ctx context.Context, dbURL string) error {
	e := s.e
	t := time.Now()
	deadline := t.Add(syncDrainWait)
	for {
		open, failed, err := s.openJobs(ctx)
		switch {
		case err != nil:
			return err
		case failed > 0:
			return fmt.Errorf("%d job(s) of the first sync FAILED or CANCELED; see %s", failed, s.p.logPath)
		case open == 0:
			e.cfg.progress("sync: first sync's deliveries done %s after it ended", time.Since(t).Round(100*time.Millisecond))
			return nil
		case time.Now().After(deadline):
			return s.cancelBacklog(ctx, dbURL, open)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("first sync's deliveries: %d jobs open: %w", open, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// openJobs counts the jobs not yet delivered, and those failed.
func (s *syncBench) openJobs(ctx context.Context) (open, failed int, err error) {
	err = s.p.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status IN ('QUEUED', 'RUNNING', 'RETRYING')),
		count(*) FILTER (WHERE status IN ('FAILED', 'CANCELED')) FROM jobs`).Scan(&open, &failed)
	if err != nil {
		return 0, 0, fmt.Errorf("job statuses: %w", err)
	}
	return open, failed, nil
}

// cancelBacklog stops ferry, cancels the jobs still open, and starts
// ferry again.
func (s *syncBench) cancelBacklog(ctx context.Context, dbURL string, open int) error {
	e := s.e
	s.p.stop()
	tag, err := s.p.pool.Exec(ctx, `UPDATE jobs SET status = 'CANCELED', finished_at = now(), updated_at = now()
		WHERE status IN ('QUEUED', 'RUNNING', 'RETRYING')`)
	if err != nil {
		return fmt.Errorf("cancel the first sync's backlog: %w", err)
	}
	s.cancelled = int(tag.RowsAffected())
	e.cfg.progress("sync: %d of the first sync's %d jobs still undelivered after %s: cancelled (%d rows), ferry restarted",
		open, s.n, syncDrainWait, s.cancelled)
	if s.p, err = e.startFerry(ctx, s.p.pool, dbURL, s.opts); err != nil {
		return fmt.Errorf("restart ferry: %w", err)
	}
	return nil
}
