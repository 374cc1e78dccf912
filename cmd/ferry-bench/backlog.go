package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferry-relay/ferry/internal/installation"
	"github.com/ferry-relay/ferry/internal/natsserver"
	"github.com/ferry-relay/ferry/queue"
)

// The backlog scenario: Sizes.BacklogJobs jobs queued behind a target that
// takes nothing (no worker runs), every message in the stream, all of them
// waiting for an hour already. It measures what ferry's background work
// (the sweeper of an API process) costs meanwhile: job-row writes per
// second (Postgres's own counters) and ferry's CPU; then the stream is
// deleted, as when NATS loses its store, and it times how long ferry takes
// to publish every job again, beside the time the benchmark itself took to
// publish them with the same client (the raw limit). Ferry's time also holds
// noticing the loss (the sweeper checks the stream every second) and
// marking each job published again (one row write per job actually lost).
func backlogScenario(ctx context.Context, e *env, rep *report) error {
	sz := e.cfg.Sizes
	n := sz.BacklogJobs
	dir, err := os.MkdirTemp("", "ferry-bench-nats-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	nats, err := natsserver.Start(dir, "127.0.0.1", -1)
	if err != nil {
		return err
	}
	defer nats.Shutdown()
	q, err := queue.Connect(nats.URL(), "ferry-bench")
	if err != nil {
		return err
	}
	defer q.Close()
	pool, dbURL, err := e.freshDB(ctx, "")
	if err != nil {
		return err
	}
	defer pool.Close()
	// The stream ferry uses: its installation's (the id in the database).
	id, err := installation.ID(ctx, pool)
	if err != nil {
		return err
	}
	if err := q.SetInstallation(id); err != nil {
		return err
	}
	if err := q.EnsureStream(ctx); err != nil {
		return err
	}
	// In a live system the stream is older than the jobs published to it:
	// wait out the sweeper's clock margin (jobs published within 10 s of the
	// stream's creation are published once more at its first check).
	time.Sleep(12 * time.Second)

	t := time.Now()
	if _, err := pool.Exec(ctx, `
		INSERT INTO jobs (id, target, filename, content_type, size, sha256, object_key, status, max_attempts,
			next_attempt_at, enqueued_at, created_at, updated_at)
		SELECT u, 'slow', 'f.pdf', 'application/pdf', 1, 'x', 'objects/' || u, 'QUEUED', 10,
			now() - interval '1 hour', now(), now() - interval '1 hour', now() - interval '1 hour'
		FROM (SELECT gen_random_uuid() AS u FROM generate_series(1, $1)) g`, n); err != nil {
		return fmt.Errorf("load jobs: %w", err)
	}
	if _, err := pool.Exec(ctx, "VACUUM (ANALYZE) jobs"); err != nil {
		return err
	}
	e.cfg.progress("backlog: %d jobs loaded in %s", n, time.Since(t).Round(100*time.Millisecond))
	t = time.Now()
	if err := publishAll(ctx, pool, q); err != nil {
		return err
	}
	rawPublish := time.Since(t)
	e.cfg.progress("backlog: %d messages published by the benchmark in %s", n, rawPublish.Round(100*time.Millisecond))

	// An API process: its sweeper runs, no worker consumes.
	p, err := e.startFerry(ctx, pool, dbURL, ferryOpts{role: "api", natsURL: nats.URL(), targets: targetsYAML(e.sink.url, 0, "slow")})
	if err != nil {
		return err
	}
	defer p.stop()
	time.Sleep(5 * time.Second) // its first ticks, the stream's first check
	window := sz.BacklogWindow
	w0, err := jobWrites(ctx, pool)
	if err != nil {
		return err
	}
	c0 := cpuSnapshot(ctx, pool, p.pid())
	time.Sleep(window) // a measurement window, not a wait for a condition
	w1, err := jobWrites(ctx, pool)
	if err != nil {
		return err
	}
	cpu := cpuSnapshot(ctx, pool, p.pid()).sub(c0)
	writesPerSec := float64(w1-w0) / window.Seconds()
	held, err := q.Pending(ctx)
	if err != nil {
		return err
	}
	e.cfg.progress("backlog: %.1f job-row writes/s, ferry %.1f%% of a core, stream holds %d", writesPerSec, 100*cpu["ferry"]/window.Seconds(), held)

	// The stream lost: ferry's sweeper rebuilds it and publishes every
	// waiting job again.
	if err := q.DeleteStream(ctx); err != nil {
		return err
	}
	t = time.Now()
	deadline := t.Add(sz.RunTimeout * 3)
	for {
		got, err := q.Pending(ctx)
		if err == nil && got >= uint64(n) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("backlog: %d of %d jobs published again after %s", got, n, time.Since(t).Round(time.Second))
		}
		time.Sleep(200 * time.Millisecond)
	}
	republish := time.Since(t)
	e.cfg.progress("backlog: %d jobs published again by ferry in %s", n, republish.Round(100*time.Millisecond))

	rep.add(row{Figure: fmt.Sprintf("backlog of %s queued jobs: background job-row writes", count(n)), Unit: "writes/s",
		Ferry: spreadOf([]float64{writesPerSec}), Goal: goal{kind: "value<", x: 100, unit: "writes/s"}})
	rep.add(row{Figure: fmt.Sprintf("backlog of %s queued jobs: ferry CPU (API + sweeper)", count(n)), Unit: "% of a core",
		Ferry: spreadOf([]float64{100 * cpu["ferry"] / window.Seconds()})})
	rep.add(row{Figure: fmt.Sprintf("backlog of %s: time to publish every job again after the stream was lost", count(n)), Unit: "s",
		Ferry: spreadOf([]float64{republish.Seconds()}), Raw: spreadOf([]float64{rawPublish.Seconds()}),
		Ratio: spreadOf([]float64{republish.Seconds() / rawPublish.Seconds()})})
	rep.note("Backlog: %s QUEUED jobs, due for an hour, every message in the stream, behind a target no worker consumes; one `ferry api` process (API and sweeper). Writes: inserts+updates+deletes of the jobs table from Postgres's statistics over %s. Republish: the stream deleted, then the time until it holds every job again; raw: the benchmark publishing the same messages with the same client (asynchronous, 1,000 at a time).",
		count(n), window)
	return nil
}

// publishAll publishes a message for every job, in id order, 1,000 at a
// time, as ferry's enqueuer does.
func publishAll(ctx context.Context, pool *pgxpool.Pool, q *queue.Queue) error {
	after := "00000000-0000-0000-0000-000000000000"
	for {
		rows, err := pool.Query(ctx, `SELECT id::text, target FROM jobs WHERE id > $1::uuid ORDER BY jobs.id LIMIT 1000`, after)
		if err != nil {
			return err
		}
		var msgs []queue.Msg
		for rows.Next() {
			var m queue.Msg
			if err := rows.Scan(&m.JobID, &m.Target); err != nil {
				rows.Close()
				return err
			}
			msgs = append(msgs, m)
		}
		rows.Close()
		if len(msgs) == 0 {
			return nil
		}
		for _, err := range q.PublishAll(ctx, msgs) {
			if err != nil {
				return err
			}
		}
		after = msgs[len(msgs)-1].JobID
	}
}

// jobWrites is how many rows of jobs were inserted, updated or deleted so
// far, by Postgres's statistics.
func jobWrites(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	// Statistics reach the shared counters within a second or so.
	time.Sleep(1500 * time.Millisecond)
	if _, err := conn.Exec(ctx, "SELECT pg_stat_clear_snapshot()"); err != nil {
		return 0, err
	}
	var w int64
	err = conn.QueryRow(ctx, `SELECT n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables
		WHERE relname = 'jobs' AND schemaname = current_schema()`).Scan(&w)
	return w, err
}
