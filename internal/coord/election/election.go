// Package election chooses one ferry process of an installation for the
// work that must run once, not once per process: the scans of the bucket
// for orphaned files and abandoned uploads, and retention. The elected
// process holds a Postgres session advisory lock on a connection of its
// own; when it dies or loses Postgres, the server releases the lock and
// another process takes it at its next try.
//
// The lock is per schema, so installations (and tests) that share a
// database but not a schema each elect their own process.
package election

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// IntervalDefault is how often a process that is not elected tries to be,
// and how often the elected one checks that it still holds the lock.
const IntervalDefault = 5 * time.Second

// callTimeout bounds each call to Postgres: generous, so that a loaded
// server's slow answer is not taken for a lost connection (which would
// hand the lead over for nothing).
const callTimeout = 5 * time.Second

// lockName names the advisory lock; the schema is appended.
const lockName = "ferry.once-per-installation."

// Elector takes part in the election for one process.
type Elector struct {
	pool     *pgxpool.Pool
	log      *slog.Logger
	interval time.Duration
	leading  atomic.Bool
}

// New returns an elector; interval 0 is IntervalDefault.
func New(pool *pgxpool.Pool, interval time.Duration, log *slog.Logger) *Elector {
	if interval <= 0 {
		interval = IntervalDefault
	}
	return &Elector{pool: pool, log: log, interval: interval}
}

// Leading reports whether this process is elected right now. It may stay
// true for up to one interval and a call timeout after the lock was lost (Postgres went away
// under it): the work it guards must tolerate a short overlap, which the
// bucket scans and retention do (each removal is checked against
// Postgres).
func (e *Elector) Leading() bool { return e.leading.Load() }

// Run takes part until ctx ends, then gives the lock up.
func (e *Elector) Run(ctx context.Context) {
	for {
		e.term(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(e.interval):
		}
	}
}

// term tries to take the lock and, when it does, holds it until ctx ends or
// the connection fails.
func (e *Elector) term(ctx context.Context) {
	actx, cancel := context.WithTimeout(ctx, callTimeout)
	conn, err := e.pool.Acquire(actx)
	cancel()
	if err != nil {
		return
	}
	var got bool
	actx, cancel = context.WithTimeout(ctx, callTimeout)
	err = conn.QueryRow(actx, `SELECT pg_try_advisory_lock(hashtext($1 || current_schema()))`, lockName).Scan(&got)
	cancel()
	if err != nil || !got {
		conn.Release()
		return
	}
	e.leading.Store(true)
	e.log.Info("elected for the once-per-installation work (bucket scans, retention)")
	defer func() {
		e.leading.Store(false)
		// Closing the session releases the lock; the pool drops a closed
		// connection instead of reusing it.
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = conn.Conn().Close(cctx)
		cancel()
		conn.Release()
	}()
	t := time.NewTicker(e.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			e.log.Info("giving up the election: stopping")
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, callTimeout)
		err := conn.Ping(pctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			e.log.Warn("lost the election: Postgres connection failed", "err", err)
			return
		}
	}
}
