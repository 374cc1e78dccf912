// Package sweeper keeps the queue true to Postgres. Every worker process
// runs one; they share the work through row locks (SKIP LOCKED).
//
// Each tick it publishes the jobs that should have a message and may not:
// retries whose wait is over, uploads the API recorded but could not publish
// (NATS was down), and jobs due for a long time (their message was lost).
// It also recovers jobs whose worker died mid-delivery (expired lease) and,
// less often, aborts multipart uploads abandoned by a crashed API process.
// That storage pass (bucket scans and retention) costs the same whoever
// runs it, so with Config.Leader set only the elected process does it.
// Publishing is idempotent (one message per job), so a job published twice
// is delivered once.
package sweeper

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/ferry-relay/ferry/jobs"
)

// Defaults of Config.
const (
	IntervalDefault     = time.Second
	GraceDefault        = 5 * time.Second
	StaleDefault        = 10 * time.Minute
	AbandonedUploadsAge = time.Hour
)

// JobStore is what the sweeper needs of the job store.
type JobStore interface {
	RecoverExpired(ctx context.Context, limit int) ([]jobs.Ref, error)
	Unpublished(ctx context.Context, grace, stale time.Duration, limit int) ([]jobs.Ref, error)
	TakeDeliveredObjects(ctx context.Context, retention time.Duration, limit int) ([]string, error)
	ExistingIDs(ctx context.Context, ids []string) (map[string]bool, error)
	Uploading(ctx context.Context, keys []string, alive time.Duration) (map[string]bool, error)
}

// Enqueuer publishes jobs and marks them enqueued; *jobs.Enqueuer is the
// one path every publisher of jobs shares.
type Enqueuer interface {
	Enqueue(ctx context.Context, refs []jobs.Ref) int
}

// ObjectCleaner removes stored files that are no longer needed.
type ObjectCleaner interface {
	AbortIncomplete(ctx context.Context, prefix string, olderThan time.Duration) (int, error)
	Remove(ctx context.Context, key string) error
	OldKeys(ctx context.Context, prefix, after string, olderThan time.Duration, limit int) ([]string, string, error)
}

// Config tunes a Sweeper.
type Config struct {
	// Interval between ticks.
	Interval time.Duration
	// Grace is how long a new job may wait for the API's own publish
	// before the sweeper publishes it.
	Grace time.Duration
	// Stale is how long a due job may sit before its message is presumed
	// lost and it is published again.
	Stale time.Duration
	// Retention is how long a delivered file stays in storage; zero keeps
	// it forever. Job rows and attempts are never removed.
	Retention time.Duration
	// AbandonedAfter is the age at which an incomplete multipart upload, or
	// a stored file that belongs to no job, is removed
	// (AbandonedUploadsAge if zero).
	AbandonedAfter time.Duration
	// Leader, when set, says whether this process is the one elected for
	// the once-per-installation storage pass; nil: always.
	Leader Leader
}

// Leader says whether this process does the once-per-installation work.
type Leader interface {
	Leading() bool
}

// Deps are the sweeper's collaborators.
type Deps struct {
	Jobs    JobStore
	Enqueue Enqueuer
	// Objects may be nil: no storage pass then.
	Objects ObjectCleaner
	Log     *slog.Logger
}

// Sweeper repairs the queue from Postgres.
type Sweeper struct {
	cfg     Config
	jobs    JobStore
	enqueue Enqueuer
	objects ObjectCleaner
	log     *slog.Logger

	orphanCursor string // where the orphan scan resumes
}

// New returns a sweeper.
func New(cfg Config, d Deps) *Sweeper {
	if cfg.Interval == 0 {
		cfg.Interval = IntervalDefault
	}
	if cfg.Grace == 0 {
		cfg.Grace = GraceDefault
	}
	if cfg.Stale == 0 {
		cfg.Stale = StaleDefault
	}
	if cfg.AbandonedAfter == 0 {
		cfg.AbandonedAfter = AbandonedUploadsAge
	}
	return &Sweeper{cfg: cfg, jobs: d.Jobs, enqueue: d.Enqueue, objects: d.Objects, log: d.Log}
}

// Run sweeps every interval until ctx is canceled.
func (s *Sweeper) Run(ctx context.Context) {
	tick := time.NewTicker(s.cfg.Interval)
	defer tick.Stop()
	lastClean := time.Time{}
	for {
		s.Sweep(ctx)
		if s.objects != nil && time.Since(lastClean) > time.Minute && (s.cfg.Leader == nil || s.cfg.Leader.Leading()) {
			lastClean = time.Now()
			s.clean(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Clean does the storage pass that Run does once a minute: abandoned
// multipart uploads, files of no job, delivered files past retention.
func (s *Sweeper) Clean(ctx context.Context) { s.clean(ctx) }

// Sweep does one pass and returns how many jobs it published.
func (s *Sweeper) Sweep(ctx context.Context) int {
	published := 0
	recovered, err := s.jobs.RecoverExpired(ctx, 500)
	if err != nil {
		s.log.Warn("recovering expired leases", "err", err)
	} else if len(recovered) > 0 {
		s.log.Warn("recovered jobs whose worker stopped responding", "count", len(recovered))
	}
	published += s.enqueue.Enqueue(ctx, recovered)
	for range 10 { // bounded: at most 10,000 per tick
		due, err := s.jobs.Unpublished(ctx, s.cfg.Grace, s.cfg.Stale, 1000)
		if err != nil {
			s.log.Warn("finding unpublished jobs", "err", err)
			break
		}
		n := s.enqueue.Enqueue(ctx, due)
		published += n
		if len(due) < 1000 || n < len(due) {
			break
		}
	}
	return published
}

// clean aborts abandoned multipart uploads and removes delivered files past
// their retention.
func (s *Sweeper) clean(ctx context.Context) {
	if n, err := s.objects.AbortIncomplete(ctx, "objects/", s.cfg.AbandonedAfter); err != nil {
		s.log.Warn("cleaning abandoned uploads", "err", err)
	} else if n > 0 {
		s.log.Info("aborted abandoned multipart uploads", "count", n)
	}
	s.removeOrphans(ctx)
	if s.cfg.Retention <= 0 {
		return
	}
	keys, err := s.jobs.TakeDeliveredObjects(ctx, s.cfg.Retention, 1000)
	if err != nil {
		s.log.Warn("finding delivered files past retention", "err", err)
		return
	}
	for _, k := range keys {
		if err := s.objects.Remove(ctx, k); err != nil {
			s.log.Warn("removing delivered file", "key", k, "err", err)
		}
	}
	if len(keys) > 0 {
		s.log.Info("removed delivered files past retention", "count", len(keys), "retention", s.cfg.Retention)
	}
}

// removeOrphans removes stored files that belong to no job: an API process
// that died between storing the bytes and recording the job leaves one. Only
// objects older than Config.AbandonedAfter and not marked as an upload in
// progress are considered, so an upload being received or recorded right
// now is never touched; each pass examines a bounded slice of
// the bucket and the next one carries on from there.
func (s *Sweeper) removeOrphans(ctx context.Context) {
	keys, next, err := s.objects.OldKeys(ctx, "objects/", s.orphanCursor, s.cfg.AbandonedAfter, 5000)
	if err != nil {
		s.log.Warn("scanning for orphaned files", "err", err)
		return
	}
	s.orphanCursor = next
	removed := 0
	for len(keys) > 0 {
		chunk := keys[:min(len(keys), 500)]
		keys = keys[len(chunk):]
		ids := make([]string, len(chunk))
		for i, k := range chunk {
			ids[i] = strings.TrimPrefix(k, "objects/")
		}
		known, err := s.jobs.ExistingIDs(ctx, ids)
		if err != nil {
			s.log.Warn("scanning for orphaned files", "err", err)
			return
		}
		// An object can be older than AbandonedAfter and still be received
		// (a long upload: S3 dates a multipart object by its start) or about
		// to be recorded: its upload marker, renewed while the bytes flow,
		// says so. Only files of requests that died are removed.
		uploading, err := s.jobs.Uploading(ctx, chunk, s.cfg.AbandonedAfter)
		if err != nil {
			s.log.Warn("scanning for orphaned files", "err", err)
			return
		}
		for i, k := range chunk {
			if known[ids[i]] || uploading[k] {
				continue
			}
			if err := s.objects.Remove(ctx, k); err != nil {
				s.log.Warn("removing orphaned file", "key", k, "err", err)
				continue
			}
			removed++
		}
	}
	if removed > 0 {
		s.log.Info("removed stored files that belong to no job", "count", removed)
	}
}
