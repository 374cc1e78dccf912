package jobs

import (
	"context"
	"fmt"
	"log/slog"
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

// Enqueuer is the one path by which a committed job reaches the queue:
// publish, then mark enqueued. The API (uploads, retries, bulk re-queue)
// and the sweeper (recovered leases, retries due, lost messages) all use
// it. A job it cannot publish keeps enqueued_at NULL, so the sweeper
// publishes it later; publishing twice is harmless (one message per job).
type Enqueuer struct {
	store *Store
	queue Publisher
	log   *slog.Logger
}

// NewEnqueuer returns the enqueuer of store's jobs onto q.
func NewEnqueuer(store *Store, q Publisher, log *slog.Logger) *Enqueuer {
	return &Enqueuer{store: store, queue: q, log: log}
}

// Enqueue publishes the jobs of refs, already committed, and marks those
// published as enqueued. It stops at the first chunk the queue refuses and
// returns how many jobs it published. It never returns early because ctx
// is canceled: only its own deadline bounds it.
func (e *Enqueuer) Enqueue(ctx context.Context, refs []Ref) int {
	published := 0
	for len(refs) > 0 {
		chunk := refs[:min(len(refs), enqueueChunk)]
		refs = refs[len(chunk):]
		ok, failed := e.enqueueChunk(ctx, chunk)
		published += ok
		if failed > 0 {
			e.log.Warn("queue unavailable: jobs stay recorded and the sweeper publishes them later",
				"published", published, "unpublished", failed+len(refs))
			break
		}
	}
	return published
}

func (e *Enqueuer) enqueueChunk(ctx context.Context, refs []Ref) (ok, failed int) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), enqueueTimeout)
	defer cancel()
	msgs := make([]queue.Msg, len(refs))
	for i, r := range refs {
		msgs[i] = queue.Msg{Target: r.Target, JobID: r.ID}
	}
	errs := e.queue.PublishAll(ctx, msgs)
	var done []Ref
	for i, err := range errs {
		if err == nil {
			done = append(done, refs[i])
		}
	}
	if len(done) > 0 {
		if err := e.store.MarkEnqueued(ctx, done...); err != nil {
			e.log.Warn("could not mark jobs published; the sweeper publishes them again, harmlessly", "err", err)
		}
	}
	return len(done), len(refs) - len(done)
}

// MarkEnqueued records that the jobs of refs were published to the queue.
// A job is marked only if it has not changed since its Ref was read
// (Ref.Version): a fast worker may already have made it RETRYING, and the
// sweeper must then see it as unpublished when its wait is over.
func (s *Store) MarkEnqueued(ctx context.Context, refs ...Ref) error {
	ids := make([]string, len(refs))
	versions := make([]time.Time, len(refs))
	for i, r := range refs {
		ids[i], versions[i] = r.ID, r.Version
	}
	_, err := s.db.Exec(ctx, `
		UPDATE jobs SET enqueued_at = now()
		FROM unnest($1::uuid[], $2::timestamptz[]) AS r(id, version)
		WHERE jobs.id = r.id AND jobs.updated_at = r.version AND jobs.status IN ('QUEUED', 'RETRYING')`,
		ids, versions)
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
