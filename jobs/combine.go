package jobs

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// combineSlots is how many combined batches run at once. While one runs,
// the statements of other callers queue, and the next batch takes them
// all: the busier the store, the larger the batches. One it is: end to end
// on 4 KiB files, 1 slot gave 0.81× the naive pipeline, 2 slots 0.76× and 4
// slots 0.66× (smaller batches, more commits). One batch of 64 statements
// takes a few milliseconds, so a process can write thousands of statements
// a second this way, several times what MinIO lets it store.
const combineSlots = 1

// combineMax bounds the statements of one batch.
const combineMax = 64

// combineTimeout bounds one batch. It runs for several callers, so no one
// caller's context bounds it.
const combineTimeout = 30 * time.Second

// combiner runs the single-statement writes of concurrent callers (claims,
// finishes, one-file uploads) as one pipelined batch: one round trip and
// one commit for all that were waiting, where each alone pays both. On a
// small file those were most of what Postgres spent per job
// (BENCHMARKS.md). A caller waits no longer than for its own statement
// when nothing else is waiting.
//
// Postgres runs a pipelined batch as one implicit transaction. When one of
// its statements fails, the whole batch is rolled back and each statement
// runs again alone, so that each caller gets its own answer and no
// statement's failure is another's. When the connection fails, the
// outcome of every statement of the batch is unknown, and each caller gets
// that error, as it would have alone.
type combiner struct {
	db    combineDB
	slots chan struct{}

	mu    sync.Mutex
	queue []*combined
}

// combineDB is a pool: batches, and statements alone.
type combineDB interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// combined is one caller's statement.
type combined struct {
	sql  string
	args []any
	// scan reads the statement's row; it returns pgx.ErrNoRows when there
	// is none, which is an answer, not a failure.
	scan func(pgx.Row) error
	err  error
	done chan struct{}
}

func newCombiner(db combineDB) *combiner {
	return &combiner{db: db, slots: make(chan struct{}, combineSlots)}
}

// queryRow runs sql with args, in a batch with whatever other statements
// are waiting, and scans its one row (or none) with scan. It returns scan's
// error, or the batch's. ctx ending before a batch took the statement
// withdraws it; once taken, it runs within combineTimeout and queryRow
// waits for its outcome.
func (c *combiner) queryRow(ctx context.Context, sql string, args []any, scan func(pgx.Row) error) error {
	me := &combined{sql: sql, args: args, scan: scan, done: make(chan struct{})}
	c.mu.Lock()
	c.queue = append(c.queue, me)
	c.mu.Unlock()
	for {
		select {
		case <-me.done:
			return me.err
		default:
		}
		select {
		case <-me.done:
			return me.err
		case <-ctx.Done():
			if c.withdraw(me) {
				return ctx.Err()
			}
			<-me.done
			return me.err
		case c.slots <- struct{}{}:
		}
		// A free slot: run what is waiting, which may no longer hold
		// this caller's statement (a batch running took it).
		c.mu.Lock()
		n := min(len(c.queue), combineMax)
		calls := c.queue[:n:n]
		c.queue = c.queue[n:]
		c.mu.Unlock()
		if len(calls) > 0 {
			c.run(calls)
		}
		<-c.slots
		if len(calls) == 0 {
			<-me.done
			return me.err
		}
	}
}

// withdraw takes cl out of the queue, unless a batch took it.
func (c *combiner) withdraw(cl *combined) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, q := range c.queue {
		if q == cl {
			c.queue = append(c.queue[:i:i], c.queue[i+1:]...)
			return true
		}
	}
	return false
}

// run runs calls as one batch and tells each its outcome.
func (c *combiner) run(calls []*combined) {
	ctx, cancel := context.WithTimeout(context.Background(), combineTimeout)
	defer cancel()
	defer func() {
		for _, cl := range calls {
			close(cl.done)
		}
	}()
	if len(calls) == 1 {
		c.alone(ctx, calls[0])
		return
	}
	b := &pgx.Batch{}
	for _, cl := range calls {
		b.Queue(cl.sql, cl.args...)
	}
	res := c.db.SendBatch(ctx, b)
	var failed error
	for _, cl := range calls {
		cl.err = cl.scan(res.QueryRow())
		if cl.err != nil && !errors.Is(cl.err, pgx.ErrNoRows) {
			failed = cl.err
			break
		}
	}
	if err := res.Close(); failed == nil {
		failed = err
	}
	var pe *pgconn.PgError
	switch {
	case failed == nil:
	case errors.As(failed, &pe):
		// Postgres refused one statement and rolled them all back: each
		// again alone, for its own answer.
		for _, cl := range calls {
			c.alone(ctx, cl)
		}
	default:
		for _, cl := range calls {
			cl.err = failed
		}
	}
}

// alone runs cl's statement by itself.
func (c *combiner) alone(ctx context.Context, cl *combined) {
	cl.err = cl.scan(c.db.QueryRow(ctx, cl.sql, cl.args...))
}
