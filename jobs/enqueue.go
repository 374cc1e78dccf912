package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferry-relay/ferry/queue"
)

// Publisher puts job messages in the queue; *queue.Queue is one. It
// returns one error per message, nil for each now in the queue.
type Publisher interface {
	PublishAll(ctx context.Context, msgs []queue.Msg) []error
}

// enqueueChunk is how many jobs one PublishAll carries.
const enqueueChunk = 1000

// enqueueTimeout bounds one chunk: publishing it and marking it. Enqueue
// runs detached from the caller's context (the jobs are committed; a
// client that goes away must not leave them unpublished for no reason),
// so this is its only deadline.
const enqueueTimeout = 15 * time.Second

// MarkDelayDefault is how long after publishing jobs just recorded the
// Enqueuer marks those still waiting (EnqueueFresh). It must stay well
// under the sweeper's grace for new jobs (sweeper.GraceDefault, 5 s), or
// the sweeper would publish them again before their mark (harmless, but
// wasted).
const MarkDelayDefault = time.Second

// maxDeferred bounds the marks an Enqueuer holds: past it, they are
// written at once.
const maxDeferred = 10 * enqueueChunk

// Enqueuer is the one path by which a committed job reaches the queue:
// publish, then mark enqueued. The API (uploads, retries, bulk re-queue)
// and the sweeper (recovered leases, retries due, lost messages) all use
// it. A job it cannot publish keeps enqueued_at NULL, so the sweeper
// publishes it later; publishing twice is harmless (one message per job).
type Enqueuer struct {
	store     *Store
	queue     Publisher
	log       *slog.Logger
	markDelay time.Duration

	mu       sync.Mutex
	deferred []published
	timer    *time.Timer // set while a mark of deferred is scheduled
}

// published is a job put in the queue, and when: its mark records that
// time, not the time of the mark. After a lost stream the sweeper publishes
// again the jobs marked before the new stream was created; a mark deferred
// past that moment must still say "before".
type published struct {
	Ref
	at time.Time
}

// NewEnqueuer returns the enqueuer of store's jobs onto q.
func NewEnqueuer(store *Store, q Publisher, log *slog.Logger) *Enqueuer {
	return &Enqueuer{store: store, queue: q, log: log, markDelay: MarkDelayDefault}
}

// Enqueue publishes the jobs of refs, already committed, and marks those
// published as enqueued. It stops at the first chunk the queue refuses and
// returns how many jobs it published. It never returns early because ctx
// is canceled: only its own deadline bounds it.
func (e *Enqueuer) Enqueue(ctx context.Context, refs []Ref) int {
	return e.enqueue(ctx, refs, e.mark)
}

// EnqueueFresh publishes jobs just recorded, as Enqueue does, but marks
// them MarkDelayDefault later, all that were published meanwhile in one
// statement. Most need no mark by then: a worker that claims a job changes
// its version, and the mark skips it (MarkEnqueued). Marking at once made
// every upload write its job's row a second time, while the worker was
// claiming it: that write and the lock waits it caused were the largest
// Postgres cost of a small file (BENCHMARKS.md). A process that dies before
// the mark leaves its last jobs unmarked; the sweeper publishes them again
// after its grace, which is harmless.
func (e *Enqueuer) EnqueueFresh(ctx context.Context, refs []Ref) int {
	return e.enqueue(ctx, refs, e.deferMark)
}

func (e *Enqueuer) enqueue(ctx context.Context, refs []Ref, mark func(context.Context, []published)) int {
	published := 0
	for len(refs) > 0 {
		chunk := refs[:min(len(refs), enqueueChunk)]
		refs = refs[len(chunk):]
		ok, failed := e.enqueueChunk(ctx, chunk, mark)
		published += ok
		if failed > 0 {
			e.log.Warn("queue unavailable: jobs stay recorded and the sweeper publishes them later",
				"published", published, "unpublished", failed+len(refs))
			break
		}
	}
	return published
}

func (e *Enqueuer) enqueueChunk(ctx context.Context, refs []Ref, mark func(context.Context, []published)) (ok, failed int) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), enqueueTimeout)
	defer cancel()
	msgs := make([]queue.Msg, len(refs))
	for i, r := range refs {
		msgs[i] = queue.Msg{Target: r.Target, JobID: r.ID}
	}
	// Taken before the publish: a mark may say a job was published a
	// little earlier than it was (the sweeper then publishes it again
	// after a lost stream, harmlessly), never later.
	sent := time.Now()
	errs := e.queue.PublishAll(ctx, msgs)
	var done []published
	for i, err := range errs {
		if err == nil {
			done = append(done, published{Ref: refs[i], at: sent})
		}
	}
	if len(done) > 0 {
		mark(ctx, done)
	}
	return len(done), len(refs) - len(done)
}

// mark marks the jobs of ps enqueued, each as of its publish.
func (e *Enqueuer) mark(ctx context.Context, ps []published) {
	for len(ps) > 0 {
		chunk := ps[:min(len(ps), enqueueChunk)]
		ps = ps[len(chunk):]
		if err := e.store.markPublished(ctx, chunk); err != nil {
			e.log.Warn("could not mark jobs published; the sweeper publishes them again, harmlessly", "err", err)
		}
	}
}

// deferMark keeps ps to be marked at the next scheduled mark, scheduling
// one if none is; past maxDeferred it marks them all at once.
func (e *Enqueuer) deferMark(ctx context.Context, ps []published) {
	e.mu.Lock()
	e.deferred = append(e.deferred, ps...)
	full := len(e.deferred) >= maxDeferred
	if !full && e.timer == nil {
		e.timer = time.AfterFunc(e.markDelay, func() {
			ctx, cancel := context.WithTimeout(context.Background(), enqueueTimeout)
			defer cancel()
			e.Flush(ctx)
		})
	}
	e.mu.Unlock()
	if full {
		e.Flush(ctx)
	}
}

// Flush marks at once the jobs whose mark EnqueueFresh deferred. A server
// calls it when it stops, so that its last jobs need no repair.
func (e *Enqueuer) Flush(ctx context.Context) {
	e.mu.Lock()
	ps := e.deferred
	e.deferred = nil
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	e.mu.Unlock()
	e.mark(ctx, ps)
}

// MarkEnqueued records that the jobs of refs were published to the queue.
// A job is marked only if it has not changed since its Ref was read
// (Ref.Version): a fast worker may already have made it RETRYING, and the
// sweeper must then see it as unpublished when its wait is over. A job
// whose row is locked is being changed (claimed, most likely), so it is
// skipped rather than waited for: that change moves its version anyway, and
// a mark that waited on a claim that waits on it would deadlock.
func (s *Store) MarkEnqueued(ctx context.Context, refs ...Ref) error {
	ps := make([]published, len(refs))
	now := time.Now()
	for i, r := range refs {
		ps[i] = published{Ref: r, at: now}
	}
	return s.markPublished(ctx, ps)
}

// markPublished is MarkEnqueued with each job's time of publish, given as
// its age on this process's clock, so that enqueued_at stays on
// Postgres's.
func (s *Store) markPublished(ctx context.Context, ps []published) error {
	ids := make([]string, len(ps))
	versions := make([]time.Time, len(ps))
	ages := make([]int64, len(ps))
	for i, p := range ps {
		ids[i], versions[i], ages[i] = p.ID, p.Version, max(0, time.Since(p.at).Milliseconds())
	}
	_, err := s.db.Exec(ctx, `
		UPDATE jobs SET enqueued_at = now() - m.age * interval '1 millisecond'
		FROM (
			SELECT jobs.id, r.age FROM jobs
			JOIN unnest($1::uuid[], $2::timestamptz[], $3::bigint[]) AS r(id, version, age) ON jobs.id = r.id
			WHERE jobs.updated_at = r.version AND jobs.status IN ('QUEUED', 'RETRYING')
			FOR UPDATE OF jobs SKIP LOCKED) AS m
		WHERE jobs.id = m.id`,
		ids, versions, ages)
	if err != nil {
		return fmt.Errorf("mark enqueued: %w", err)
	}
	return nil
}

// RefOf returns the Ref of a job just read or changed.
func RefOf(j Job) Ref { return Ref{ID: j.ID, Target: j.Target, Version: j.UpdatedAt} }

// refColumns are what collectRefs scans.
const refColumns = `id::text, target, updated_at`

func collectRefs(rows pgx.Rows, what string) ([]Ref, error) {
	refs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Ref, error) {
		var ref Ref
		err := r.Scan(&ref.ID, &ref.Target, &ref.Version)
		return ref, err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return refs, nil
}
