// Package enqueue is the one path by which a committed job reaches the
// queue: publish, then mark enqueued in the store. It stands between jobs
// (the store, which knows nothing of transport) and queue (JetStream); the
// API reaches it through its own small interface, and only cmd/ferry wires
// it.
package enqueue

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ferry-relay/ferry/jobs"
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
	store     *jobs.Store
	queue     Publisher
	log       *slog.Logger
	markDelay time.Duration

	mu       sync.Mutex
	deferred []jobs.Published
	timer    *time.Timer // set while a mark of deferred is scheduled
}

// New returns the enqueuer of store's jobs onto q.
func New(store *jobs.Store, q Publisher, log *slog.Logger) *Enqueuer {
	return &Enqueuer{store: store, queue: q, log: log, markDelay: MarkDelayDefault}
}

// Enqueue publishes the jobs of refs, already committed, and marks those
// published as enqueued. It stops at the first chunk the queue refuses and
// returns how many jobs it published. It never returns early because ctx
// is canceled: only its own deadline bounds it.
func (e *Enqueuer) Enqueue(ctx context.Context, refs []jobs.Ref) int {
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
func (e *Enqueuer) EnqueueFresh(ctx context.Context, refs []jobs.Ref) int {
	return e.enqueue(ctx, refs, e.deferMark)
}

func (e *Enqueuer) enqueue(ctx context.Context, refs []jobs.Ref, mark func(context.Context, []jobs.Published)) int {
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

func (e *Enqueuer) enqueueChunk(ctx context.Context, refs []jobs.Ref, mark func(context.Context, []jobs.Published)) (ok, failed int) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), enqueueTimeout)
	defer cancel()
	msgs := make([]queue.Msg, len(refs))
	for i, r := range refs {
		// The job's trace goes with its message, however often it is
		// published again (a retry, a lost stream).
		msgs[i] = queue.Msg{Target: r.Target, JobID: r.ID, TraceParent: r.TraceParent}
	}
	// Taken before the publish: a mark may say a job was published a
	// little earlier than it was (the sweeper then publishes it again
	// after a lost stream, harmlessly), never later.
	sent := time.Now()
	errs := e.queue.PublishAll(ctx, msgs)
	var done []jobs.Published
	for i, err := range errs {
		if err == nil {
			done = append(done, jobs.Published{Ref: refs[i], At: sent})
		}
	}
	if len(done) > 0 {
		mark(ctx, done)
	}
	return len(done), len(refs) - len(done)
}

// mark marks the jobs of ps enqueued, each as of its publish.
func (e *Enqueuer) mark(ctx context.Context, ps []jobs.Published) {
	for len(ps) > 0 {
		chunk := ps[:min(len(ps), enqueueChunk)]
		ps = ps[len(chunk):]
		if err := e.store.MarkPublished(ctx, chunk); err != nil {
			e.log.Warn("could not mark jobs published; the sweeper publishes them again, harmlessly", "err", err)
		}
	}
}

// deferMark keeps ps to be marked at the next scheduled mark, scheduling
// one if none is; past maxDeferred it marks them all at once.
func (e *Enqueuer) deferMark(ctx context.Context, ps []jobs.Published) {
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
